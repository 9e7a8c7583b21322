#!/usr/bin/env python3
"""Where a server's CPU time goes, from `perf script` output (perf record -g --call-graph dwarf).

    perf script -i perf.data | bench/perf-stages.py [CPU µs per request]

Each sample goes to one owner (OWNERS: mlhost's stages, and the libraries of the stack):
walking its stack from the leaf to the root, the first frame that names one decides; helpers
(the allocator, memcpy, serde_json, the kernel) are transparent. The leaf frame also tells the
kind of work: kernel (by system call), allocator, memcpy, other code. With the CPU time per request (scripts/bench-hot-path measures it), each share is
also given in µs per request. Used by `scripts/bench-hot-path --profile`.
"""

import collections
import re
import sys

# Who owns a sample: walking its stack from the leaf, the first frame whose path (generic
# arguments left out; for `<Type as Trait>::f`, the type's, else the trait's) starts with one of
# these prefixes. Helpers — the allocator, memcpy, serde_json, std, the kernel — own nothing:
# their time goes to the frame that called them.
OWNERS = [
    ("component call: host side (mlhost::wasm)", ["mlhost::wasm"]),
    ("component call: wasmtime", ["wasmtime"]),
    ("hop: WorkerPool::infer, oneshot reply", ["mlhost::workers::WorkerPool::infer",
                                               "tokio::sync::oneshot"]),
    ("worker thread: queue wait (crossbeam), run_job", ["mlhost::workers", "crossbeam_channel"]),
    ("batching", ["mlhost::batching"]),
    ("encode: JSON", ["mlhost::codec::json::response", "mlhost::protocol::rest::body::encode"]),
    ("decode: JSON / binary -> typed tensors", ["mlhost::codec::json", "mlhost::protocol::rest::body",
                                                "mlhost::protocol::binary"]),
    ("encode: gRPC", ["mlhost::codec::grpc::response", "mlhost::protocol::grpc::messages::encode"]),
    ("decode: gRPC -> typed tensors", ["mlhost::codec::grpc", "mlhost::protocol::grpc::messages"]),
    ("core: checks, content types, outcome, stats",
     ["mlhost::core", "mlhost::stats", "mlhost::codec"]),
    ("model lookup", ["mlhost::repository"]),
    ("metrics", ["mlhost::metrics", "prometheus_client"]),
    ("tracing: spans, request id", ["tracing_subscriber", "tracing_core", "sharded_slab",
                                    "tracing::span", "tracing::dispatcher",
                                    "mlhost::protocol::request_id"]),
    ("REST: middleware, handler", ["mlhost::protocol::rest"]),
    ("gRPC: observe layer, handler", ["mlhost::protocol::grpc", "mlhost::protocol"]),
    ("tonic (service glue, codec)", ["mlhost_proto::inference::grpc_inference_service_server",
                                     "tonic::", "tonic_prost"]),
    ("protobuf (prost)", ["prost", "mlhost_proto"]),
    ("HTTP/2 (h2, hyper)", ["h2::", "hyper::proto::h2"]),
    ("HTTP/1 (hyper)", ["hyper::", "hyper_util"]),
    ("axum, tower (routing, layers, extractors)", ["axum", "tower", "matchit"]),
    ("tokio: scheduler, park/unpark, socket polling", ["tokio::", "mio::"]),
    ("bare server (its handler)", ["bare_server"]),
]
ALLOCATOR = re.compile(r"malloc|free|realloc|_int_|tcache|unlink_chunk|__rd[la]_|__rust_(de)?alloc")

HEADER = re.compile(r"^(\S.*?)\s+(\d+)(?:/(\d+))?\s+(?:\[\d+\]\s+)?[\d.]+:")
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
SYSCALL = re.compile(r"(?:__x64_sys_|__do_sys_|ksys_)(\w+)")


def strip_generics(text):
    """`text` without its generic arguments (`<...>`)."""
    out, depth = [], 0
    for char in text:
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(char)
    return "".join(out)


def path_of(symbol):
    """A frame's path: `<Type as Trait>::f` gives Type::f (Trait::f when Type is a generic
    parameter or a reference); generic arguments left out."""
    symbol = re.sub(r"\+0x[0-9a-f]+$", "", symbol)
    if not symbol.startswith("<"):
        return strip_generics(symbol)
    depth = 0
    for at, char in enumerate(symbol):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if depth == 0:
            break
    inner, rest = symbol[1:at], symbol[at + 1:]
    parts = strip_generics(inner).split(" as ", 1)
    own = parts[0].strip()
    if len(parts) == 2 and (len(own) <= 2 or own[0] in "&(*["):
        own = parts[1].strip()
    return own + strip_generics(rest)


def owner_of(frames):
    """The owner of a sample's stack (symbols, leaf first)."""
    for symbol, _ in frames:
        path = path_of(symbol)
        for owner, prefixes in OWNERS:
            if path.startswith(tuple(prefixes)):
                return owner
    return None


def work_of(frames):
    """What the leaf does: the kernel (by system call), the allocator, copying, other code."""
    symbol, dso = frames[0] if frames else ("?", "?")
    if "kernel" in dso:
        return "kernel: " + system_call(frames)
    if ALLOCATOR.search(symbol):
        return "allocator (malloc, free)"
    if re.search(r"mem(cpy|move|set|cmp)", symbol):
        return "memcpy, memcmp"
    return "user code"


def samples(lines):
    """(thread name, [(symbol, dso)], leaf first) of each sample."""
    comm, frames = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        frame = FRAME.match(line)
        if frame and comm is not None:
            frames.append((frame.group(1), frame.group(2)))
        elif not line.startswith((" ", "\t")):
            header = HEADER.match(line)
            comm = header.group(1).strip() if header else line.split()[0]
    if comm is not None:
        yield comm, frames


def system_call(frames):
    """The system call a kernel sample is in: the kernel's entry, else the C library's."""
    for symbol, dso in frames:
        found = SYSCALL.search(symbol)
        if found:
            return found.group(1)
    for symbol, dso in frames:
        if "libc" in dso:
            return re.sub(r"^(__GI_)?_*(libc_)?|\+0x[0-9a-f]+$", "", symbol)
    return "no system call: interrupts, scheduling"


def thread_kind(comm):
    if comm.startswith("mlhost-worker"):
        return "model worker thread"
    if comm.startswith(("mlhost-async", "bare-async", "tokio-runtime")):
        return "async threads (tokio)"
    return comm


def table(title, counts, total, per_request):
    print(title)
    for name, count in counts.most_common():
        share = 100.0 * count / total
        micros = f"{share * per_request / 100:7.2f} µs" if per_request else ""
        print(f"  {share:5.1f}%  {micros}  {name}")


def main():
    per_request = float(sys.argv[1]) if len(sys.argv) > 1 else None
    owners, threads, work, leaves = (collections.Counter() for _ in range(4))
    total = 0
    for comm, frames in samples(sys.stdin):
        total += 1
        threads[thread_kind(comm)] += 1
        owner = owner_of(frames)
        if owner is None:
            if comm.startswith("mlhost-worker"):
                owner = "component call: the runtime's wasm (JIT code: no further unwinding)"
            else:
                owner = "other, unattributed"
        owners[owner] += 1
        work[work_of(frames)] += 1
        leaf = path_of(frames[0][0]) if frames else "?"
        leaves[leaf[:100]] += 1
    if not total:
        sys.exit("no samples")
    unit = f", µs of CPU per request (of {per_request:.1f})" if per_request else ""
    print(f"{total} samples")
    table(f"by thread{unit}:", threads, total, per_request)
    table(f"by owner (the innermost frame naming a stage or a library){unit}:", owners, total,
          per_request)
    table(f"by kind of work (the leaf frame){unit}:", work, total, per_request)
    top = collections.Counter(dict(leaves.most_common(12)))
    table(f"top 12 functions by self time{unit}:", top, total, per_request)


if __name__ == "__main__":
    main()
