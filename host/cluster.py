"""`obscura anonymize --cluster`: anonymize videos on a Dask cluster, split at keyframes.

The client indexes each video (packet timestamps, no decoding), cuts it into chunks at keyframes
and submits one task per chunk; every worker decodes its chunk from the keyframe at or before
its warm-up, runs its own backend (`model`, `sim`, or `pynq` on workers started with
`--resources obscura_board=1`), encodes the anonymized frames and returns the packets. The client
joins the packets without re-encoding, copies the audio from the input and writes the output
atomically; chunk results live in memory only, so no frame, raw or anonymized, reaches a
temporary file.

**Seams.** Each chunk runs a warm-up of the frames before it (2 (`hold` + 2) by default)
whose output is discarded, and reports its tracker state before its first output frame and
after its last. The client accepts a chunk only when `seams.seam_kind` proves it equal to the
single run from that state on; any other chunk is run again from the start of the latest chunk
proven exact, which cannot differ. `obscura/seams.py` gives the argument.
"""

import hashlib
import heapq
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .errors import InputError, ObscuraError
from .seams import MIN_WARMUP, STRICT, UpdateRecorder, contents, seam_kind, tracker_state

__all__ = ["ClusterError", "VideoIndex", "index_video", "plan_chunks", "run_chunk", "connect",
           "task_resources", "join_chunks", "anonymize_cluster", "cli_anonymize", "MIN_WARMUP"]

#: The Dask resource a board worker advertises (`dask worker --resources obscura_board=1`).
BOARD_RESOURCE = "obscura_board"
#: The Dask setting that makes nannies start workers with MALLOC_TRIM_THRESHOLD_ (see `connect`).
NO_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


class ClusterError(ObscuraError):
    """The cluster run cannot be done or did not complete; nothing was written."""


@dataclass(frozen=True)
class VideoIndex:
    """The presentation timestamps of a video's frames in order and its keyframes' indices."""
    pts: tuple
    keyframes: tuple
    time_base: Fraction


def index_video(src):
    """Index the video stream of `src` from its packets (no decoding)."""
    import av
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{src}: not a readable video ({exc}); nothing written") from exc
    with inp:
        if not inp.streams.video:
            raise InputError(f"{src}: no video stream")
        vin = inp.streams.video[0]
        pts, keys = [], set()
        for packet in inp.demux(vin):
            if packet.size == 0:            # the demuxer's end-of-stream marker
                continue
            if packet.pts is None:
                return VideoIndex((), (0,), vin.time_base)   # no timestamps: one chunk
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.add(packet.pts)
        pts.sort()
        if len(set(pts)) != len(pts):
            return VideoIndex((), (0,), vin.time_base)
        return VideoIndex(tuple(pts), tuple(i for i, p in enumerate(pts) if p in keys),
                          vin.time_base)


def plan_chunks(index, chunk_frames):
    """Return [(start, end)] frame ranges cut at keyframes, each at least `chunk_frames` long
    (longer where keyframes are sparse; a short tail joins the chunk before it)."""
    n = len(index.pts)
    if n == 0:
        return [(0, None)]                  # unindexed: one chunk, the whole file
    cuts = [0]
    for k in index.keyframes:
        if k - cuts[-1] >= chunk_frames and n - k >= chunk_frames:
            cuts.append(k)
    return list(zip(cuts, cuts[1:] + [n]))


def task_resources(backend):
    """Dask resources a task on `backend` needs: board tasks only run on board workers."""
    return {BOARD_RESOURCE: 1} if backend.split(":", 1)[0] == "pynq" else None


def _encoder(enc):
    """A video encoder set up as `anonymize._video` sets up its output stream."""
    import av
    from av.codec.context import Flags
    cc = av.CodecContext.create(enc["codec"], "w")
    cc.width, cc.height = enc["width"], enc["height"]
    cc.pix_fmt = "yuv420p"
    # What PyAV's add_stream gives the encoder: frames are rebased to 1 / rate.
    cc.framerate, cc.time_base = enc["rate"], 1 / enc["rate"]
    if enc["global_header"]:
        cc.flags |= Flags.global_header
    cc.options = dict(enc["options"])
    return cc


def run_chunk(src, pts, first, settings, enc):
    """Anonymize the frames with presentation timestamps `pts` (in order) of `src`; the first
    `first` of them are the warm-up, their output is discarded. Runs on a worker.

    Return a dict: the encoded packets (pts, dts, keyframe, bytes) and the encoder's
    extradata, per output frame the accelerator's log record and the sha256 of the anonymized
    BGR frame, the tracker state before the first output frame and after the last, and whether
    the tracker updates of the output frames were free of slot order (`seams`).
    `pts` empty means: the whole file, unindexed.
    """
    import av

    from .accelerator import open as open_accelerator
    acc = open_accelerator(settings["backend"], cascade=settings["cascade"], quiet=True)
    acc.configure(**settings["configure"])
    cc = _encoder(enc)
    watch = UpdateRecorder(acc)
    t0 = time.monotonic()
    packets, hashes = [], []
    state_in = ()

    def emit(frame, out_pts):
        vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
        vf.pts, vf.time_base = out_pts, enc["time_base"]      # the input's pts, as _video
        packets.extend(cc.encode(vf))

    with acc, av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        if pts:
            inp.seek(pts[0], stream=vin, backward=True)   # the keyframe at or before
        frames = (f for f in inp.decode(vin) if not pts or (f.pts is not None
                                                            and f.pts >= pts[0]))
        for j, frame in enumerate(frames):
            if pts and j == len(pts):
                break
            if pts and frame.pts != pts[j]:
                raise ClusterError(f"{src}: frame {j} of a chunk decoded with pts "
                                   f"{frame.pts}, expected {pts[j]}: this file cannot be cut "
                                   f"at its keyframes exactly; run it without --cluster")
            if j == first:
                state_in = tracker_state(acc)
                watch.start()
            watch.before()
            out = acc.process(frame.to_ndarray(format="bgr24"))
            watch.after()
            if j >= first:
                hashes.append(hashlib.sha256(out.tobytes()).hexdigest())
                emit(out, frame.pts)
        if pts and len(hashes) != len(pts) - first:
            raise ClusterError(f"{src}: the video ended after {first + len(hashes)} of "
                               f"{len(pts)} frames of a chunk; the file is truncated")
        packets.extend(cc.encode(None))
        return {"packets": [(p.pts, p.dts, bool(p.is_keyframe), bytes(p)) for p in packets],
                "extradata": bytes(cc.extradata or b""), "log": acc.frame_log[first:],
                "hashes": hashes, "state_in": state_in, "state_out": tracker_state(acc),
                "order_free": watch.order_free,
                "frames_run": first + len(hashes), "seconds": time.monotonic() - t0}


def run_image(src, settings):
    """Anonymize one still image; return it encoded in its own format. Runs on a worker."""
    import cv2

    from .accelerator import open as open_accelerator
    frame = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError(f"{src}: not a readable image (corrupt or unsupported); nothing "
                         f"written")
    with open_accelerator(settings["backend"], cascade=settings["cascade"], quiet=True) as acc:
        acc.configure(**settings["configure"])
        ok, data = cv2.imencode(Path(src).suffix, acc.process_image(frame))
        if not ok:
            raise ObscuraError(f"{src}: OpenCV could not encode this image format")
        return {"data": data.tobytes(), "log": acc.frame_log}   # as the CLI logs images


@contextmanager
def connect(address, timeout=30):
    """Yield a Dask client: `local` or `local:N` starts N worker processes on this machine
    (default: one per core) and stops them afterwards; anything else is a scheduler address
    (tcp://host:8786)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ClusterError("--cluster needs Dask distributed: pip install 'obscura[cluster]'") \
            from exc
    if address == "local" or address.startswith("local:"):
        n = address.partition(":")[2]
        if n and not (n.isdigit() and int(n) > 0):
            raise InputError(f"--cluster local:N needs a positive worker count, not {n!r}")
        import dask
        # Processes with one thread each: the model and the simulator hold the GIL. Dask's
        # nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which fixes glibc's mmap threshold:
        # the model's large per-frame arrays then fault in afresh, 2.3x slower (measured).
        with dask.config.set({NO_MALLOC_TRIM: None}), \
                LocalCluster(n_workers=int(n) if n else os.cpu_count() or 1,
                             threads_per_worker=1, processes=True,
                             dashboard_address=":0") as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({exc}); start one "
                           f"with `dask scheduler` and pass its address") from exc
    with client:
        yield client


@dataclass
class _File:
    """One video's chunks on their way through the cluster."""
    src: Path
    dest: Path
    index: VideoIndex
    ranges: list
    enc: dict
    results: dict = field(default_factory=dict)     # chunk -> verified result
    pending: dict = field(default_factory=dict)     # chunk -> unverified result
    starts: dict = field(default_factory=dict)      # chunk -> first frame of its run
    anchored: set = field(default_factory=set)      # chunks rerun from an exact run's start
    reruns: int = 0
    rerun_frames: int = 0                           # frames run by chunks later run again
    task_seconds: float = 0.0                       # time the workers spent on its chunks
    frames_done: int = 0
    error: str = None

    @property
    def frames(self):
        return len(self.index.pts)


def _video_encoding(src, dest, codec, crf):
    import av

    from .anonymize import _container_format
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        fmt = av.ContainerFormat(_container_format(dest), "w")
        return {"codec": codec, "width": vin.codec_context.width,
                "height": vin.codec_context.height, "time_base": vin.time_base,
                "rate": Fraction(vin.average_rate or vin.guessed_rate or 30),
                "options": {"crf": str(crf)} if codec in ("libx264", "libx265") else {},
                "global_header": bool(fmt.flags & av.format.Flags.global_header.value)}


class _Run:
    """Submit, verify and rerun the chunks of every file; join each file when complete."""

    def __init__(self, client, settings, warmup, retries, keep_metadata, keep_audio, quiet):
        self.client, self.settings, self.warmup = client, settings, max(warmup, MIN_WARMUP)
        self.retries, self.keep_metadata, self.keep_audio = retries, keep_metadata, keep_audio
        self.quiet = quiet
        self.futures = {}           # future -> (file, chunk)
        self.files = []

    def submit(self, f, i, start):
        """Submit chunk i of file f, run from frame `start`."""
        a, b = f.ranges[i]
        f.starts[i] = start
        pts = list(f.index.pts[start:b]) if f.index.pts else []
        fut = self.client.submit(run_chunk, str(f.src), pts, a - start, self.settings, f.enc,
                                 key=f"obscura-{f.src.name}-{i}-{start}-{time.monotonic_ns()}",
                                 retries=self.retries, pure=False,
                                 resources=task_resources(self.settings["backend"]))
        self.futures[fut] = (f, i)
        return fut

    def _verify(self, f):
        """Accept the chunks that `seam_kind` proves, in order; return the futures of reruns."""
        again = []
        i = len(f.results)
        while i in f.pending:
            res = f.pending.pop(i)
            prev = f.results.get(i - 1)
            if i in f.anchored:             # rerun from an exact run's start: exact
                if contents(res["state_in"]) != contents(prev["state_out"]):
                    raise ClusterError(f"{f.src}: chunk {i + 1}, run again, disagrees with "
                                       f"the run it repeats: the backend is not "
                                       f"deterministic; run without --cluster")
                kind = STRICT
            else:
                kind = seam_kind(f.starts[i], res["state_in"], prev and prev["kind"],
                                 prev and prev["state_out"], res["order_free"])
            if kind is not None:
                res["kind"] = kind
                f.results[i] = res
                i += 1
                continue
            # Run it again from the start of the latest exact run: it repeats that run.
            start = f.starts[max(j for j in range(i) if f.results[j]["kind"] == STRICT)]
            f.reruns += 1
            f.rerun_frames += res["frames_run"]
            f.anchored.add(i)
            again.append(self.submit(f, i, start))
            break
        return again

    def run(self, files):
        from distributed import as_completed
        self.files = files
        for f in files:
            for i, (a, _b) in enumerate(f.ranges):
                self.submit(f, i, max(0, a - self.warmup))
        ac = as_completed(list(self.futures))
        try:
            for fut in ac:
                f, i = self.futures.pop(fut)
                if f.error:
                    continue
                try:
                    res = fut.result()
                except Exception as exc:     # it failed on every try, or its workers died
                    a, b = f.ranges[i]
                    self._fail(f, f"{f.src}: chunk {i + 1} of {len(f.ranges)} (frames {a}.."
                                  f"{b - 1}) failed on every try ({type(exc).__name__}: "
                                  f"{exc}); nothing written")
                    continue
                f.pending[i] = res
                f.task_seconds += res["seconds"]
                try:
                    for again in self._verify(f):
                        ac.add(again)
                except ClusterError as exc:
                    self._fail(f, str(exc))
                    continue
                self._progress(f, i)
                if len(f.results) == len(f.ranges):
                    self._join(f)
        except BaseException:
            self.client.cancel(list(self.futures))      # Ctrl-C or a bug: stop the cluster
            raise

    def _fail(self, f, msg):
        f.error = msg
        self.client.cancel([fut for fut, (g, _) in self.futures.items() if g is f])

    def _progress(self, f, i):
        f.frames_done = sum(len(r["hashes"]) for r in f.results.values())
        if self.quiet:
            return
        done = sum(g.frames_done for g in self.files)
        total = sum(g.frames for g in self.files)
        print(f"{f.src.name}: chunk {i + 1}/{len(f.ranges)} back; {f.frames_done}/{f.frames} "
              f"frames verified | all files: {done}/{total} frames", file=sys.stderr,
              flush=True)

    def _join(self, f):
        try:
            join_chunks(f.src, f.dest, [f.results[i] for i in range(len(f.ranges))], f.enc,
                        self.keep_metadata, self.keep_audio)
        except ObscuraError as exc:
            f.error = str(exc)


def join_chunks(src, dest, results, enc, keep_metadata=False, keep_audio=True):
    """Write `dest` (atomically) from the chunks' encoded packets in order and the audio of
    `src`, copied. No packet is re-encoded."""
    import av

    from .anonymize import _atomic_target, _container_format
    extradata = {r["extradata"] for r in results}
    if len(extradata) != 1:
        raise ClusterError(f"{dest}: the chunks' encoders disagree on the stream headers, so "
                           f"they cannot be joined without re-encoding; run without --cluster")
    tmp = _atomic_target(dest)
    try:
        with av.open(str(src)) as inp, \
                av.open(str(tmp), "w", format=_container_format(dest)) as out:
            if keep_metadata:
                out.metadata.update(inp.metadata)
            vout = out.add_stream(enc["codec"], rate=enc["rate"])
            vout.width, vout.height = enc["width"], enc["height"]
            vout.pix_fmt = "yuv420p"
            vout.time_base = enc["time_base"]
            vout.options = dict(enc["options"])
            ain = inp.streams.audio[0] if keep_audio and inp.streams.audio else None
            aout = out.add_stream_from_template(ain) if ain is not None else None
            out.start_encoding()
            if bytes(vout.codec_context.extradata or b"") != extradata.pop():
                raise ClusterError(f"{dest}: the chunks' stream headers differ from this "
                                   f"encoder's; run without --cluster")
            tb = 1 / enc["rate"]                # the encoders' time base (see _encoder)

            def video():
                last = None
                for r in results:
                    for pts, dts, key, data in r["packets"]:
                        if last is not None and dts is not None and dts <= last:
                            raise ClusterError(f"{dest}: decode timestamps overlap at a chunk "
                                               f"seam; run without --cluster")
                        last = dts
                        p = av.Packet(data)
                        p.pts, p.dts, p.is_keyframe = pts, dts, key
                        p.time_base = tb
                        yield (dts if dts is not None else pts) * tb, 0, p, vout

            def audio():
                if ain is None:
                    return
                for p in inp.demux(ain):
                    if p.dts is not None:
                        yield p.dts * p.time_base, 1, p, aout

            # Interleave by time so the muxer need not buffer a whole stream.
            for _t, _s, packet, stream in heapq.merge(video(), audio(),
                                                      key=lambda e: (e[0], e[1])):
                packet.stream = stream
                out.mux(packet)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def anonymize_cluster(client, jobs, settings, codec="libx264", crf=18, keep_metadata=False,
                      keep_audio=True, chunk_frames=600, warmup=None, retries=2, quiet=False):
    """Anonymize [(src, dest)] on the cluster behind `client`.

    Return one dict per job: `src`, `dest`, `log` (the accelerator's records of every output
    frame, in order), `hashes` (sha256 of each anonymized BGR frame), `chunks`, `seams` (how
    each chunk was proven), `reruns`, `frames_run` (frames through the accelerators, warm-ups
    and reruns included), `task_seconds` (the workers' time on them), or `error`.
    """
    from .media import IMAGE_EXTENSIONS
    hold = settings["configure"].get("hold", 15)
    # hold + 2 is the least that lets a warm-up see a slot age out; twice that proves every
    # seam at the dev clip's keyframes, hold + 2 three of five (bench `cluster`).
    warmup = 2 * (hold + MIN_WARMUP) if warmup is None else warmup
    run = _Run(client, settings, warmup, retries, keep_metadata, keep_audio, quiet)
    files, images, out = [], [], []
    for src, dest in jobs:
        src, dest = Path(src).resolve(), Path(dest).resolve()   # workers see absolute paths
        if src.suffix.lower() in IMAGE_EXTENSIONS:
            images.append((src, dest, client.submit(
                run_image, str(src), settings, retries=retries, pure=False,
                resources=task_resources(settings["backend"]))))
            continue
        try:
            index = index_video(src)
            files.append(_File(src, dest, index, plan_chunks(index, chunk_frames),
                               _video_encoding(src, dest, codec, crf)))
        except ObscuraError as exc:
            out.append({"src": src, "dest": dest, "error": str(exc)})
    run.run(files)
    for f in files:
        if f.error:
            out.append({"src": f.src, "dest": f.dest, "error": f.error})
            continue
        results = [f.results[i] for i in range(len(f.ranges))]
        out.append({"src": f.src, "dest": f.dest, "chunks": len(f.ranges), "reruns": f.reruns,
                    "seams": [r["kind"] for r in results],
                    "frames_run": sum(r["frames_run"] for r in results) + f.rerun_frames,
                    "task_seconds": f.task_seconds,
                    "log": [r for res in results for r in res["log"]],
                    "hashes": [h for res in results for h in res["hashes"]]})
    for src, dest, fut in images:
        try:
            res = fut.result()
            _write_atomic(dest, res["data"])
            out.append({"src": src, "dest": dest, "chunks": 1, "reruns": 0, "log": res["log"],
                        "hashes": [], "seams": [], "frames_run": len(res["log"])})
        except Exception as exc:
            out.append({"src": src, "dest": dest, "error": f"{src}: {exc}"})
    return out


def _write_atomic(dest, data):
    from .anonymize import _atomic_target
    tmp = _atomic_target(dest)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def cli_anonymize(args):
    """`obscura anonymize ... --cluster ADDRESS`: the CLI's cluster path; return the exit code."""
    from .anonymize import plan
    from .cli import _audit_record, _write_report
    live = [i for i in args.inputs if i.isdigit() or "://" in i]
    if live:
        raise InputError(f"{live[0]}: a camera or stream cannot be split across a cluster; "
                         f"run it without --cluster")
    if args.chunk_frames < 1:
        raise InputError(f"--chunk-frames must be at least 1, not {args.chunk_frames}")
    jobs, skipped = plan(args.inputs, args.output)
    for path in skipped:
        print(f"obscura: skipped {path} (not an image or video)", file=sys.stderr)
    failed, records, todo = 0, [], []
    for src, dest in jobs:
        if dest.exists() and not args.overwrite:
            print(f"obscura: error: {dest} exists; pass --overwrite to replace it",
                  file=sys.stderr)
            records.append({"input": str(src), "error": f"{dest} exists"})
            failed += 1
        else:
            todo.append((src, dest))
    settings = {"backend": args.backend, "cascade": args.cascade, "configure": dict(
        mode=args.mode, shape=args.shape, block=args.block, color=args.color,
        margin=args.margin, hold=args.hold, zones=args.zone or [],
        min_neighbors=args.min_neighbors, threshold_offset=args.threshold_offset)}
    with connect(args.cluster) as client:
        results = anonymize_cluster(client, todo, settings, codec=args.codec, crf=args.crf,
                                    keep_metadata=args.keep_metadata,
                                    keep_audio=not args.no_audio,
                                    chunk_frames=args.chunk_frames, quiet=args.quiet)
    for r in results:
        if "error" in r:
            print(f"obscura: error: {r['error']}", file=sys.stderr)
            records.append({"input": str(r["src"]), "error": r["error"]})
            failed += 1
            continue
        if not args.quiet:
            print(f"{r['src']} -> {r['dest']}: {len(r['log'])} frame(s) in {r['chunks']} "
                  f"chunk(s), {r['reruns']} seam rerun(s)", file=sys.stderr)
        record = _audit_record(r["src"], r["dest"], r["log"])
        record["cluster"] = {"chunks": r["chunks"], "seams": r.get("seams", []),
                             "seam_reruns": r["reruns"]}
        records.append(record)
    if args.report:
        _write_report(args, records)
    return 1 if failed else 0
