"""The package's import graph, read statically (lazy imports inside functions included): cycles, arrows
against the data flow, framework imports outside bench/, and the largest modules. Exit 1 on a cycle or a
wrong arrow, so CI can run it.

    python3 scripts/import_graph.py [REPO]
"""
import ast
import sys
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
S = ROOT / "suite" / "dsabench"
mods = {}
for p in S.rglob("*.py"):
    rel = p.relative_to(S).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    name = ".".join(["dsabench"] + parts)
    mods[name] = p
graph = {}
for name, p in mods.items():
    deps = set()
    for node in ast.walk(ast.parse(p.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dsabench"):
            for a in node.names:
                cand = node.module + "." + a.name
                deps.add(cand if cand in mods else node.module)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("dsabench"): deps.add(a.name)
    graph[name] = {d for d in deps if d in mods and d != name and d != "dsabench"}
# cycles via Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in graph[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in graph:
    if v not in idx: sc(v)
print("modules:", len(graph), "edges:", sum(len(d) for d in graph.values()))
print("cycles:", sccs or "none")
ORDER = ["errors", "workload", "reference", "bench", "store", "analysis", "present", "cli"]
# stage rank; bench may import store (records) -- allowed direction list:
ALLOWED = {
 "workload": {"errors", "workload"},
 "reference": {"errors", "workload", "reference"},
 "store": {"errors", "workload", "store"},
 "bench": {"errors", "workload", "reference", "store", "bench", "analysis"},
 "analysis": {"errors", "workload", "store", "analysis"},
 "present": {"errors", "workload", "store", "analysis", "present"},
 "cli": set(ORDER) | {"cli"},
}
def stage(m):
    parts = m.split(".")
    return parts[1] if len(parts) > 1 else "root"
bad = []
for m, deps in graph.items():
    s = stage(m)
    if s not in ALLOWED: continue
    for d in deps:
        if stage(d) not in ALLOWED[s] and stage(d) != "root":
            bad.append(f"{m} -> {d}")
print("arrows against the flow:", bad or "none")
FW = ("paddle", "torch", "triton")
fw = []
for name, p in mods.items():
    if stage(name) in ("workload", "reference", "store", "analysis", "present", "cli"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                n = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if n and n.split(".")[0] in FW: fw.append(f"{name} imports {n}")
print("framework imports outside bench:", fw or "none")
big = sorted(((sum(1 for _ in p.open()), n) for n, p in mods.items()), reverse=True)[:8]
print("largest modules:", big)

sys.exit(1 if (sccs or bad or fw) else 0)
