"""Fixture: the platform the process runs on, picked lazily from how Paddle was compiled."""

import paddle


class Platform:
    name = "cpu"

    def is_cuda(self) -> bool:
        return self.name == "cuda"

    def is_xpu(self) -> bool:
        return self.name == "xpu"


class CUDAPlatform(Platform):
    name = "cuda"


_current = None


def __getattr__(name):
    global _current
    if name != "current_platform":
        raise AttributeError(name)
    if _current is None:
        _current = CUDAPlatform() if paddle.is_compiled_with_cuda() else Platform()
    return _current
