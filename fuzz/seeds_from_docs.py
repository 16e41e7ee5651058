"""Writes seeds for the kfl_sql and mcp_arguments fuzz targets from the
docs: every KFL filter (`--kfl '...'`, `"kfl": "..."` and the code spans of
docs/kfl.md) as a filter on calls and on flows (a first byte 0 or 1), every
SELECT as SQL (first byte 2), and every JSON object of docs/mcp.md and the
MCP tests as tool arguments. Seeds are named by their SHA-1.

    python3 fuzz/seeds_from_docs.py
"""
import re, json, hashlib, os, glob, sys
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def put(target, data):
    d = f'{root}/fuzz/seeds/{target}'; os.makedirs(d, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()
    open(f'{d}/{h}', 'wb').write(data)
# KFL: code spans in kfl.md and the kubeshark reference, and --kfl '...' args anywhere in docs
kfl = set()
texts = [open(p).read() for p in glob.glob(f'{root}/docs/*.md') + [f'{root}/README.md', os.path.join(root, '..', 'shared', 'reference', 'kubeshark.md')] if os.path.exists(p)]
for t in texts:
    for m in re.finditer(r"--kfl '([^']+)'", t): kfl.add(m.group(1))
    for m in re.finditer(r'"kfl":\s*"((?:[^"\\]|\\.)*)"', t):
        try: kfl.add(json.loads('"'+m.group(1)+'"'))
        except Exception: pass
for m in re.finditer(r'`([^`\n]{2,200})`', open(f'{root}/docs/kfl.md').read()):
    s = m.group(1)
    if not s.startswith('trawl '): kfl.add(s)
sql = set()
for t in texts:
    for m in re.finditer(r'(?is)\b(SELECT\b[^;`]{5,600}?)(?:;|```|`|$)', t):
        sql.add(m.group(1).strip())
for k in kfl:
    put('kfl_sql', b'\x00' + k.encode()); put('kfl_sql', b'\x01' + k.encode())
for s in sql: put('kfl_sql', b'\x02' + s.encode())
# MCP arguments: JSON objects in docs/mcp.md and the python tests
args = 0
srcs = [f'{root}/docs/mcp.md'] + glob.glob(f'{root}/**/tests/**/*.py', recursive=True) + glob.glob(f'{root}/**/*mcp*.py', recursive=True)
for p in set(srcs):
    t = open(p).read()
    for i, ch in enumerate(t):
        if ch != '{': continue
        depth = 0
        for j in range(i, min(len(t), i + 2000)):
            if t[j] == '{': depth += 1
            elif t[j] == '}':
                depth -= 1
                if depth == 0:
                    frag = t[i:j+1]
                    try:
                        v = json.loads(frag)
                    except Exception:
                        try:
                            import ast; v = ast.literal_eval(frag)
                            v = json.loads(json.dumps(v))
                        except Exception: v = None
                    if isinstance(v, dict) and v:
                        put('mcp_arguments', json.dumps(v).encode()); args += 1
                    break
print(len(kfl), 'kfl', len(sql), 'sql', args, 'json')
