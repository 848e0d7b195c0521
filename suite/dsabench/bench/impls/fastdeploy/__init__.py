"""FastDeploy's own `DSAAttentionBackend.forward_mixed`, run from a source tree at a commit.

checkout (PATH[@COMMIT] -> a tree, a `git worktree` for a commit), config (the FDConfig-shaped
object the constructor reads), loader (imports the backend with FastDeploy's modules where they
import cleanly, declared stand-ins elsewhere), ops (the suite's plain-Paddle custom ops and
FlashMLA with FastDeploy's argument layout), meta (the ForwardMeta-shaped object of a case),
run (one case: backend + meta -> a forward callable) and backend (the worker's Backend).
See docs/fastdeploy.md.
"""
