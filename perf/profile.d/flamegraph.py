#!/usr/bin/python3
"""perf/profile.d/flamegraph.py: perf script -> folded stacks -> flame graph SVG.

Python 3 standard library only, no network: a small re-implementation of the
idea of Brendan Gregg's stackcollapse-perf.pl + flamegraph.pl (not a copy), so
that perf/profile works on a machine where the FlameGraph scripts are not
packaged (Debian 12 has no `flamegraph` package).

  perf script -F comm,pid,tid,period,event,ip,sym,dso -i perf.data \
      | flamegraph.py collapse [--pid PID] > stacks.folded
  flamegraph.py svg --title T [--subtitle S] < stacks.folded > flame.svg
  flamegraph.py shares < stacks.folded         # where the time goes, by library

Frame names in the folded file:
  sym_[k]          kernel function (orange in the SVG)
  sym              a function of the main binary: ringlet, or llhttp compiled
                   into it (llhttp* is yellow, the rest red)
  sym [lib]        a function of a shared library, lib = file name without
                   ".so.N" (libpq blue, json-c green, libc and others aqua)
  [lib]            an address in that library perf could not name
The first frame of every stack is the thread's name (comm), with a trailing
"-NNN" (io_uring's iou-wrk-PID, kworker/...) collapsed so that threads of one
kind merge.
"""

import argparse
import html
import re
import sys
import zlib
from collections import defaultdict

# --------------------------------------------------------------------- collapse

_HEADER = re.compile(r"^(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+(?P<period>\d+)?\s*(?P<event>\S+):\s*$")
_FRAME = re.compile(r"^\s*(?P<ip>[0-9a-fA-F]+)\s+(?P<sym>.*?)\s+\((?P<dso>[^()]*)\)\s*$")
_SO = re.compile(r"\.so(\.[0-9.]+)?$")


def lib_name(dso):
    base = dso.rsplit("/", 1)[-1]
    return _SO.sub("", base) or base


def frame_name(sym, dso):
    user_brackets = ("[unknown]", "[vdso]", "[anon]", "[heap]", "[stack]")
    kernel = dso.endswith(".ko") or (dso.startswith("[") and dso not in user_brackets)
    if sym.startswith("[unknown]"):
        sym = ""
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)  # the offset some -F combinations add
    if kernel:
        return (sym or "[kernel]") + "_[k]"
    if not dso or dso.startswith("["):
        return sym or dso or "[unknown]"
    base = dso.rsplit("/", 1)[-1]
    if ".so" not in base:
        # an executable (ringlet itself, with llhttp compiled in): no tag
        return sym or "[" + base + "]"
    lib = lib_name(dso)
    return (sym + " [" + lib + "]") if sym else "[" + lib + "]"


def norm_comm(comm):
    comm = comm.strip()
    comm = re.sub(r"-\d+$", "", comm)          # iou-wrk-1234 -> iou-wrk
    comm = re.sub(r"/\d+(:\d+)?(-.*)?$", "", comm)  # kworker/1:2-events -> kworker
    return comm.replace(";", ":") or "?"


def collapse(args):
    counts = defaultdict(int)
    want_pid = set(args.pid or [])
    stack, head = [], None

    def flush():
        if head is None:
            return
        comm, pid = head
        if want_pid and pid not in want_pid:
            return
        frames = [norm_comm(comm)] + [f.replace(";", ":") for f in reversed(stack)]
        counts[";".join(frames)] += 1

    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            stack, head = [], None
            continue
        if not line[0].isspace():
            flush()
            stack = []
            m = _HEADER.match(line)
            head = (m.group("comm"), m.group("pid")) if m else (line.split()[0], "0")
            continue
        m = _FRAME.match(line)
        if not m or head is None:
            continue
        stack.append(frame_name(m.group("sym"), m.group("dso")))
    flush()
    for k in sorted(counts):
        sys.stdout.write("%s %d\n" % (k, counts[k]))
    return 0


def read_folded(stream):
    for line in stream:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, n = line.rpartition(" ")
        try:
            yield stack.split(";"), int(n)
        except ValueError:
            continue

# ----------------------------------------------------------------------- shares


def category(frame):
    if frame.endswith("_[k]"):
        return "kernel"
    if frame.startswith("llhttp"):
        return "llhttp"
    m = re.search(r"\[([^\]]+)\]$", frame)
    if m:
        lib = m.group(1)
        if lib.startswith("libpq"):
            return "libpq"
        if lib.startswith("libjson-c"):
            return "json-c"
        if lib.startswith("libc") or lib.startswith("ld-linux"):
            return "libc"
        if lib.startswith("liburing"):
            return "liburing"
        if lib in ("unknown",):
            return "unknown"
        return "other libs"
    if frame == "[unknown]":
        return "unknown"
    return "ringlet"


# Inclusive markers: a sample counts once for each marker found in its stack.
def _any(*prefixes):
    return lambda f: f.startswith(prefixes)


def _lib(name):
    return lambda f: f.endswith("[" + name + "]") or (name == "libpq" and f.startswith("PQ"))


MARKERS = [
    ("io_uring_enter: the loop's one syscall (submit, complete, wait)", _any("__do_sys_io_uring_enter", "__x64_sys_io_uring_enter", "__se_sys_io_uring_enter")),
    ("  io_send: responses to clients", _any("io_send")),
    ("  io_recv: requests from clients", _any("io_recv")),
    ("  io_poll / io_uring task work (readiness of the PostgreSQL sockets)", _any("io_poll_task_func", "io_poll_wake", "io_poll_add", "io_poll_check_events")),
    ("libpq's own send/recv syscalls (sendto/recvfrom, not io_uring)", _any("__sys_sendto", "__sys_recvfrom", "__x64_sys_sendto", "__x64_sys_recvfrom")),
    ("kernel TCP send, any caller (tcp_sendmsg)", _any("tcp_sendmsg")),
    ("kernel TCP receive, any caller (tcp_recvmsg)", _any("tcp_recvmsg")),
    ("loopback delivery in softirq (__do_softirq / net_rx_action)", _any("__do_softirq", "net_rx_action", "handle_softirqs")),
    ("llhttp: HTTP parsing", _any("llhttp")),
    ("libpq (PQ* or any [libpq] frame)", _lib("libpq")),
    ("json-c", _lib("libjson-c")),
    ("printf family (snprintf, vfprintf)", _any("__vfprintf_internal", "__vsnprintf", "___vsnprintf", "snprintf", "__printf_buffer", "__snprintf")),
    ("malloc/free", _any("malloc", "cfree", "free", "_int_malloc", "_int_free", "realloc", "calloc", "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc")),
    ("pconn_drive: ringlet's database side (db_pool.c)", _any("pconn_drive")),
    ("http_session_feed: ringlet's HTTP side (http.c, router, handlers)", _any("http_session_feed")),
]


def shares(args):
    total = 0
    self_by = defaultdict(int)
    incl = defaultdict(int)
    by_comm = defaultdict(int)
    for frames, n in read_folded(sys.stdin):
        total += n
        by_comm[frames[0]] += n
        leaf = frames[-1] if len(frames) > 1 else frames[0]
        self_by[category(leaf)] += n
        body = frames[1:]
        for name, test in MARKERS:
            if any(test(f) for f in body):
                incl[name] += n
    if total == 0:
        print("no samples")
        return 1

    def pct(n):
        return 100.0 * n / total

    print("samples: %d" % total)
    print()
    print("by thread (comm):")
    for k, v in sorted(by_comm.items(), key=lambda kv: -kv[1]):
        print("  %6.2f%%  %s" % (pct(v), k))
    print()
    print("self time by where the sampled instruction was:")
    for k, v in sorted(self_by.items(), key=lambda kv: -kv[1]):
        print("  %6.2f%%  %s" % (pct(v), k))
    print()
    print("inclusive: samples with this anywhere in the stack (with frame pointers, stacks")
    print("that pass through Debian's libpq/libc/json-c can lose frames; see docs/profiling.md):")
    for name, _ in MARKERS:
        print("  %6.2f%%  %s" % (pct(incl[name]), name))
    return 0

# -------------------------------------------------------------------------- svg


def color(name, kind):
    h = zlib.crc32(name.encode()) & 0xFFFF
    v1 = (h & 0xFF) / 255.0
    v2 = (h >> 8) / 255.0
    if kind == "kernel":      # orange
        r, g, b = 230 + 25 * v1, 120 + 60 * v2, 30 * v1
    elif kind == "llhttp":    # yellow
        r, g, b = 220 + 30 * v1, 200 + 40 * v2, 50 * v1
    elif kind == "libpq":     # blue
        r, g, b = 80 + 50 * v1, 130 + 60 * v2, 220 + 30 * v1
    elif kind == "json-c":    # green
        r, g, b = 90 + 60 * v1, 190 + 50 * v2, 90 + 40 * v1
    elif kind in ("libc", "liburing", "other libs"):  # aqua
        r, g, b = 80 + 50 * v1, 200 + 40 * v2, 200 + 40 * v2
    elif kind == "root":      # grey
        r, g, b = 190 + 20 * v1, 190 + 20 * v1, 190 + 20 * v1
    elif kind == "unknown":
        r, g, b = 200, 200, 200
    else:                     # ringlet: red
        r, g, b = 205 + 50 * v1, 70 + 80 * v2, 55 + 40 * v2
    return "rgb(%d,%d,%d)" % (r, g, b)


def fit_text(name, px, cw):
    """The label drawn in a frame px wide (also without JavaScript, e.g. on GitHub)."""
    m = int((px - 6) / cw)
    if m < 3:
        return ""
    return name if len(name) <= m else name[:m - 2] + ".."


LEGEND_COLORS = {"ringlet": "rgb(230,110,75)", "llhttp": "rgb(235,220,50)", "libpq": "rgb(105,160,235)",
                 "json-c": "rgb(120,215,110)", "libc": "rgb(105,220,220)", "kernel": "rgb(240,150,15)"}


class Node:
    __slots__ = ("name", "value", "children")

    def __init__(self, name):
        self.name = name
        self.value = 0
        self.children = {}


JS = r"""
var W=%(width)d, PAD=10, FH=%(fh)d, CW=%(cw).3f, TOTAL=%(total)d, zoomed=null;
var frames=[].slice.call(document.querySelectorAll('g.f'));
function fit(g,w){var t=g.querySelector('text'),n=g.getAttribute('data-n');
 var m=Math.floor((w-6)/CW); if(m<3){t.textContent='';return;}
 t.textContent=n.length<=m?n:n.substring(0,m-2)+'..';}
function layout(x0,w0,d0){var s=(W-2*PAD)/w0;
 frames.forEach(function(g){var x=+g.getAttribute('data-x'),w=+g.getAttribute('data-w'),d=+g.getAttribute('data-d');
  var r=g.querySelector('rect'),t=g.querySelector('text');
  var vis=(x>=x0&&x+w<=x0+w0+1e-9)||(d<d0&&x<=x0&&x+w>=x0+w0-1e-9);
  if(!vis||w*s<0.5){g.style.display='none';return;} g.style.display='';
  var px=PAD+(Math.max(x,x0)-x0)*s, pw=Math.min(w,w0)*s; if(d<d0){px=PAD;pw=W-2*PAD;}
  r.setAttribute('x',px);r.setAttribute('width',Math.max(pw-0.5,0.1));t.setAttribute('x',px+3);fit(g,pw);
  g.style.opacity=(d<d0)?0.5:1;});}
function zoom(g){zoomed=g;layout(+g.getAttribute('data-x'),+g.getAttribute('data-w'),+g.getAttribute('data-d'));
 document.getElementById('unzoom').style.opacity=1;}
function unzoom(){zoomed=null;layout(0,TOTAL,0);document.getElementById('unzoom').style.opacity=0.3;}
frames.forEach(function(g){g.addEventListener('click',function(){zoom(g);});});
document.getElementById('unzoom').addEventListener('click',unzoom);
function search(){var p=prompt('Search (regular expression):','');if(p===null)return;
 var re;try{re=new RegExp(p);}catch(e){alert(e);return;}var hits=[];
 frames.forEach(function(g){var r=g.querySelector('rect');
  if(!r.hasAttribute('data-c'))r.setAttribute('data-c',r.getAttribute('fill'));
  if(p!==''&&re.test(g.getAttribute('data-n'))){r.setAttribute('fill','rgb(230,0,230)');
   hits.push([+g.getAttribute('data-x'),+g.getAttribute('data-w')]);}
  else r.setAttribute('fill',r.getAttribute('data-c'));});
 hits.sort(function(a,b){return a[0]-b[0];});var tot=0,end=-1;
 hits.forEach(function(h){if(h[0]>=end){tot+=h[1];end=h[0]+h[1];}else if(h[0]+h[1]>end){tot+=h[0]+h[1]-end;end=h[0]+h[1];}});
 document.getElementById('matched').textContent=p===''?'':'Matched: '+(100*tot/TOTAL).toFixed(2)+'%%';}
document.getElementById('search').addEventListener('click',search);
document.addEventListener('keydown',function(e){if((e.ctrlKey||e.metaKey)&&e.key==='f'){e.preventDefault();search();}
 if(e.key==='Escape')unzoom();});
layout(0,TOTAL,0);
"""


def svg(args):
    root = Node("all")
    for frames, n in read_folded(sys.stdin):
        root.value += n
        node = root
        for f in frames:
            child = node.children.get(f)
            if child is None:
                child = node.children[f] = Node(f)
            child.value += n
            node = child
    total = root.value
    width, fh, fs = args.width, 16, 12
    cw = fs * 0.59
    pad = 10
    # depth of the tree (frames narrower than min_px are not drawn)
    min_samples = total * args.min_px / (width - 2 * pad) if total else 0
    rects = []

    def walk(node, x, depth):
        rects.append((node, x, depth))
        cx = x
        for c in sorted(node.children.values(), key=lambda c: c.name):
            if c.value >= min_samples:
                walk(c, cx, depth + 1)
            cx += c.value

    if total:
        walk(root, 0, 0)
    maxdepth = max((d for _, _, d in rects), default=0)
    top = 60
    height = top + (maxdepth + 1) * fh + 40
    out = []
    w = out.append
    w('<?xml version="1.0" standalone="no"?>\n')
    w('<svg version="1.1" width="%d" height="%d" onload="" viewBox="0 0 %d %d" '
      'xmlns="http://www.w3.org/2000/svg">\n' % (width, height, width, height))
    w('<style>text{font-family:Verdana,sans-serif;font-size:%dpx;fill:#000} '
      'g.f:hover rect{stroke:#000;stroke-width:0.5} g.f{cursor:pointer} '
      '.ctl{cursor:pointer}</style>\n' % fs)
    w('<rect x="0" y="0" width="100%" height="100%" fill="#f8f8f8"/>\n')
    w('<text x="%d" y="20" text-anchor="middle" style="font-size:17px">%s</text>\n'
      % (width // 2, html.escape(args.title)))
    if args.subtitle:
        w('<text x="%d" y="38" text-anchor="middle" style="fill:#555">%s</text>\n'
          % (width // 2, html.escape(args.subtitle)))
    w('<text id="unzoom" class="ctl" x="%d" y="20" style="opacity:0.3">Reset Zoom</text>\n' % pad)
    w('<text id="search" class="ctl" x="%d" y="20" text-anchor="end">Search</text>\n' % (width - pad))
    w('<text id="matched" x="%d" y="%d" text-anchor="end"></text>\n' % (width - pad, height - 12))
    legend = [("ringlet", "ringlet"), ("llhttp", "llhttp"), ("libpq", "libpq"), ("json-c", "json-c"),
              ("libc, liburing, other libs", "libc"), ("kernel", "kernel")]
    lx = pad
    for label, kind in legend:
        w('<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>\n'
          % (lx, height - 21, LEGEND_COLORS[kind], lx + 14, height - 12, html.escape(label)))
        lx += 24 + int(len(label) * cw)
    w('<text x="%d" y="%d" style="fill:#555">%d samples; click a frame to zoom, Ctrl-F to search</text>\n'
      % (lx + 10, height - 12, total))
    scale = (width - 2 * pad) / total if total else 0
    for node, x, depth in rects:
        kind = "root" if depth <= 1 else category(node.name)
        y = height - 40 - (depth + 1) * fh
        pw = node.value * scale
        name = node.name if depth else "all"
        label = "%s (%d samples, %.2f%%)" % (name, node.value, 100.0 * node.value / total)
        w('<g class="f" data-n="%s" data-x="%d" data-w="%d" data-d="%d"><title>%s</title>'
          '<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s"/>'
          '<text x="%.1f" y="%d">%s</text></g>\n'
          % (html.escape(name, quote=True), x, node.value, depth, html.escape(label),
             pad + x * scale, y, max(pw - 0.5, 0.1), fh - 1, color(node.name, kind),
             pad + x * scale + 3, y + fh - 4, html.escape(fit_text(name, pw, cw))))
    w('<script type="text/ecmascript"><![CDATA[\n')
    w(JS % {"width": width, "fh": fh, "cw": cw, "total": max(total, 1)})
    w(']]></script>\n</svg>\n')
    sys.stdout.write("".join(out))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collapse", help="perf script output (stdin) -> folded stacks (stdout)")
    c.add_argument("--pid", action="append", help="keep only samples of this process id (repeatable)")
    s = sub.add_parser("svg", help="folded stacks (stdin) -> SVG (stdout)")
    s.add_argument("--title", default="Flame graph")
    s.add_argument("--subtitle", default="")
    s.add_argument("--width", type=int, default=1200)
    s.add_argument("--min-px", type=float, default=0.1, help="omit frames narrower than this many pixels")
    sub.add_parser("shares", help="folded stacks (stdin) -> time by library and by marker (stdout)")
    args = ap.parse_args()
    return {"collapse": collapse, "svg": svg, "shares": shares}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
