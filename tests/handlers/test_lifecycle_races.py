"""Uploads A, B and C of one key within a second, deletions among them, every event delivered late, out of order and
perhaps twice, to both functions, sequentially and concurrently, against moto with real S3 calls: the end state is
exactly the renditions of the last version, or none when the last act was a delete. Many shuffled schedules, each
from a seed (a failure prints it), plus the one interleaving named in the issue: a render of B that finishes
writing after C's renditions and their clean-up are done."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest

from kiray_imaging import config, metrics
from kiray_imaging.lambda_pipeline import process_all
from kiray_imaging.presets import resolve
from kiray_imaging.rendition_writes import RenditionWriteConflictError
from kiray_imaging.s3_client import S3Client, from_environment
from kiray_imaging.s3_events import objects_from_event

if TYPE_CHECKING:
    from tests.handlers.s3_helpers import (
        BUCKET,
        HookedS3,
        delete_record,
        event,
        files,
        jpeg,
        next_sequencer,
        state_key,
        state_of,
        upload,
        version_key,
    )
else:
    from s3_helpers import (
        BUCKET,
        HookedS3,
        delete_record,
        event,
        files,
        jpeg,
        next_sequencer,
        state_key,
        state_of,
        upload,
        version_key,
    )

KEY = "uploads/l9/kitchen.jpg"
FORMATS = {"thumbnail": "jpeg", "medium": "jpeg,webp"}
PHOTOS = {name: jpeg(160, 120, rgb) for name, rgb in (("A", (200, 0, 0)), ("B", (0, 200, 0)), ("C", (0, 0, 200)))}


@pytest.fixture(autouse=True)
def _quiet_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    # Powertools' metric set is one per process, as on Lambda, where invocations never overlap; here they do.
    for name in ("rendered", "skipped", "failed", "removed"):
        monkeypatch.setattr(metrics, name, lambda *a, **k: None)


def settings(rendition: str) -> config.Settings:
    return config.load({"SOURCE_BUCKET": BUCKET, "DEST_BUCKET": BUCKET, "OUTPUT_FORMAT": FORMATS[rendition]})


def expected_end(s3: Any, last: str | None, etags: dict[str, str]) -> list[str]:
    if last is None:
        return []
    keys = [version_key(s3, KEY, "thumbnail", ".jpg", etags[last])]
    return sorted(keys + [version_key(s3, KEY, "medium", ext, etags[last]) for ext in (".jpg", ".webp")])


@dataclass
class Schedule:
    """S3 operations in the order they happen, and the deliveries of their events between them."""

    seed: int
    actions: list[tuple[str, Any]] = field(default_factory=list)
    """("put", name) | ("delete", None) | ("deliver", index of the op whose event it is)."""
    last: str | None = None

    @classmethod
    def shuffled(cls, seed: int) -> Schedule:
        rng = random.Random(seed)
        photos = ["A", "B", "C"]
        if rng.random() < 0.3:
            photos[2] = "A"  # C is A's bytes again: the same version token comes back
        ops: list[tuple[str, Any]] = [("put", p) for p in photos]
        for _ in range(rng.choice((0, 1, 1, 2))):
            ops.insert(rng.randrange(1, len(ops) + 1), ("delete", None))
        schedule = cls(seed)
        pending: list[int] = []
        for i, op in enumerate(ops):
            schedule.actions.append(op)
            pending += [i] * rng.choice((1, 1, 2))  # some events come twice
            # Deliver a random part of what is pending now; the rest comes later, in another order.
            rng.shuffle(pending)
            now = rng.randrange(len(pending) + 1)
            schedule.actions += [("deliver", j) for j in pending[:now]]
            pending = pending[now:]
        rng.shuffle(pending)
        schedule.actions += [("deliver", j) for j in pending]
        schedule.last = ops[-1][1] if ops[-1][0] == "put" else None
        return schedule


class Jittery:
    """The functions' S3 client, pausing before each call — mostly a few ms, now and then 50–150 ms (a slow render,
    a throttled request): widens the windows between a read and a write in which another invocation gets in, so
    that the threads below interleave in many ways, a stale render finishing after newer ones among them."""

    def __init__(self, rng: random.Random) -> None:
        self.real, self.rng, self.lock = from_environment(), rng, threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(**kwargs: Any) -> Any:
            with self.lock:
                slow = self.rng.random() < 0.15
                pause = 0.05 + self.rng.random() * 0.1 if slow else self.rng.random() * 0.005
            time.sleep(pause)
            return method(**kwargs)

        return call


class World:
    """moto's bucket, the two functions, and the events the operations produced."""

    def __init__(self, s3: Any, client: Callable[[], S3Client] = from_environment) -> None:
        self.s3 = s3
        self.client = client
        self.events: list[dict[str, Any]] = []
        self.etags: dict[str, str] = {}

    def act(self, op: str, name: str | None) -> None:
        if op == "put":
            assert name is not None
            record = upload(self.s3, KEY, PHOTOS[name])
            self.etags[name] = str(record["s3"]["object"]["eTag"])
        else:
            self.s3.delete_object(Bucket=BUCKET, Key=KEY)
            record = delete_record(KEY, next_sequencer())
        self.events.append(event(record))

    def deliver(self, index: int, rendition: str) -> None:
        """One function handles one event; what Lambda retries (a transient error) is handled again."""
        self.deliver_as(self, index, rendition)

    def deliver_as(self, world: World, index: int, rendition: str) -> None:
        """``world``'s event ``index``, through this world's client."""
        objects = objects_from_event(world.events[index])
        for _ in range(5):
            try:
                process_all(self.client(), settings(rendition), resolve(rendition), objects)
                return
            except RenditionWriteConflictError:
                continue
        raise AssertionError(f"event {index} kept conflicting for {rendition}")


def check_end(s3: Any, world: World, schedule: Schedule) -> None:
    where = f"seed {schedule.seed}: {schedule.actions}"
    assert files(s3) == expected_end(s3, schedule.last, world.etags), where
    for rendition in FORMATS:
        state = state_of(s3, KEY, rendition)
        assert state is not None, where
        if schedule.last is None:
            assert (state["state"], state["files"]) == ("deleted", []), where
        else:
            assert (state["state"], state["upload"]["etag"]) == ("current", world.etags[schedule.last]), where


def seeds(count: int, base: int) -> Iterator[int]:
    return iter(range(base, base + count))


@pytest.mark.parametrize("seed", list(seeds(40, 1000)))
def test_shuffled_deliveries_in_turn_end_with_the_last_version(s3: Any, seed: int) -> None:
    schedule = Schedule.shuffled(seed)
    world = World(s3)
    for op, arg in schedule.actions:
        if op == "deliver":
            for rendition in FORMATS:
                world.deliver(arg, rendition)
        else:
            world.act(op, arg)
    check_end(s3, world, schedule)


@pytest.mark.parametrize("seed", list(seeds(40, 2000)))
def test_shuffled_deliveries_at_once_end_with_the_last_version(s3: Any, seed: int) -> None:
    # Deliveries run on four threads while the operations go on: renders overlap each other, the state's
    # compare-and-swap and the clean-ups, in whatever order the scheduler gives.
    schedule = Schedule.shuffled(seed)
    jittery = Jittery(random.Random(seed))
    world = World(s3, lambda: cast(S3Client, jittery))
    running: list[Future[None]] = []
    pace = random.Random(-seed)
    with ThreadPoolExecutor(4) as pool:
        for op, arg in schedule.actions:
            if op == "deliver":
                running += [pool.submit(world.deliver, arg, rendition) for rendition in FORMATS]
            else:
                # Let the renders in flight get somewhere (read their upload, say) before the next upload or delete.
                time.sleep(pace.random() * 0.06)
                world.act(op, arg)
        for future in running:
            future.result()
    check_end(s3, world, schedule)


@pytest.mark.parametrize("same_bytes", [False, True], ids=["C differs from A", "C is A's bytes again"])
def test_a_render_of_b_that_writes_after_c_is_done_leaves_nothing(s3: Any, same_bytes: bool) -> None:
    # B's render has its pixels but has not written them when C is uploaded, rendered, made current and its
    # clean-up done; then B's files land. B must notice that C is newer and take its files away again.
    world = World(s3)
    world.act("put", "A")
    for rendition in FORMATS:
        world.deliver(0, rendition)
    world.act("put", "B")
    b_thumb = version_key(s3, KEY, "thumbnail", ".jpg", world.etags["B"])
    paused, resume = threading.Event(), threading.Event()

    def hold(kwargs: dict[str, Any]) -> None:
        paused.set()
        assert resume.wait(30), "C's render did not finish"

    world.client = lambda: cast(S3Client, HookedS3({("put_object", b_thumb): hold}))
    with ThreadPoolExecutor(1) as pool:
        b = pool.submit(world.deliver, 1, "thumbnail")
        assert paused.wait(30)
        world.client = from_environment
        world.act("put", "A" if same_bytes else "C")
        for rendition in FORMATS:
            world.deliver(2, rendition)
        c = ["A" if same_bytes else "C"]
        assert files(s3) == expected_end(s3, c[0], world.etags)
        resume.set()
        b.result()
    world.deliver(1, "medium")
    assert files(s3) == expected_end(s3, c[0], world.etags)
    state = state_of(s3, KEY)
    assert state is not None
    assert state["upload"]["etag"] == world.etags[c[0]]


def run_paused(world: World, index: int, rendition: str, hooks: dict[tuple[str, str], Any]) -> Future[None]:
    """Delivers event ``index`` on a thread, through a client whose ``hooks`` may pause it."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(
        lambda: World(world.s3, lambda: cast(S3Client, HookedS3(hooks))).deliver_as(world, index, rendition)
    )
    pool.shutdown(wait=False)
    return future


def pause_once() -> tuple[threading.Event, threading.Event, Callable[[dict[str, Any]], None]]:
    paused, resume = threading.Event(), threading.Event()

    def hold(kwargs: dict[str, Any]) -> None:
        if not paused.is_set():
            paused.set()
            assert resume.wait(30), "the other invocation did not finish"

    return paused, resume, hold


def test_a_stale_event_of_the_same_bytes_cannot_take_away_the_current_files(s3: Any) -> None:
    # A, then B, then A's bytes again (A2). A2's render has written its files (A's keys: the same token) but not yet
    # made them current when a late duplicate of A's own event comes: stale (B is newer), it deletes the files of
    # its token that the state does not name — A2's. A2 then makes them current and, settling, puts them back.
    world = World(s3)
    for i, name in enumerate(("A", "B")):
        world.act("put", name)
        world.deliver(i, "thumbnail")
    world.act("put", "A")
    paused, resume, hold = pause_once()
    a2 = run_paused(world, 2, "thumbnail", {("put_object", state_key(KEY)): hold})
    assert paused.wait(30)
    world.deliver(0, "thumbnail")  # A's event again, late: stale
    assert files(s3, "renditions/thumbnail/") == [version_key(s3, KEY, "thumbnail", ".jpg", world.etags["B"])]
    resume.set()
    a2.result()
    assert files(s3, "renditions/thumbnail/") == [version_key(s3, KEY, "thumbnail", ".jpg", world.etags["A"])]


def test_a_clean_up_that_races_a_return_to_the_same_bytes_renders_the_files_again(s3: Any) -> None:
    # A is current. B becomes current, and before B's clean-up deletes A's files, A's bytes are uploaded again (A2)
    # and made current (its files are there: A's). Then B's clean-up deletes them. B, settling, finds the state
    # naming files that are missing and not its own: it renders the state's version from the upload and puts them.
    world = World(s3)
    world.act("put", "A")
    world.deliver(0, "thumbnail")
    a_thumb = version_key(s3, KEY, "thumbnail", ".jpg", world.etags["A"])
    world.act("put", "B")
    paused, resume, hold = pause_once()
    b = run_paused(world, 1, "thumbnail", {("delete_object", a_thumb): hold})
    assert paused.wait(30)
    world.act("put", "A")
    world.deliver(2, "thumbnail")
    resume.set()
    b.result()
    assert files(s3, "renditions/thumbnail/") == [a_thumb]
    assert (state_of(s3, KEY) or {})["upload"]["etag"] == world.etags["A"]


def test_a_stale_clean_up_that_races_a_return_to_the_same_bytes_puts_the_files_back(s3: Any) -> None:
    # A, deleted, then A's bytes again (A2): the same token. A late duplicate of A's first event is stale (the
    # tombstone is newer) and forgets its token: it reads the state (the tombstone, naming nothing), and before its
    # delete lands, A2's event renders, makes A's keys current and settles. The stale event's delete then takes
    # them away: it reads the state again, finds it naming what it deleted, and puts them back.
    world = World(s3)
    world.act("put", "A")
    world.deliver(0, "thumbnail")
    a_thumb = version_key(s3, KEY, "thumbnail", ".jpg", world.etags["A"])
    world.act("delete", None)
    world.deliver(1, "thumbnail")
    world.act("put", "A")
    paused, resume, hold = pause_once()
    stale = run_paused(world, 0, "thumbnail", {("delete_object", a_thumb): hold})
    assert paused.wait(30)
    world.deliver(2, "thumbnail")
    assert files(s3, "renditions/thumbnail/") == [a_thumb]
    resume.set()
    stale.result()
    assert files(s3, "renditions/thumbnail/") == [a_thumb]
    assert (state_of(s3, KEY) or {})["state"] == "current"
