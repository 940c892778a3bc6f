"""The notebook plumbing a chapter's visible cells call: start, pick, compare, readings, the
one-minute box, and the records they write."""

import json
import multiprocessing
from functools import partial

import pytest
import torch
from convbook import book, nets, profiles, records, stats
from convbook.errors import ConfigError


def test_setup_says_its_device_and_precision():
    setup = book.start("smoke", device="cpu", amp=False)
    assert setup.precision == "float32 on cpu" and "float32 on cpu" in repr(setup)
    assert book.start("smoke", device="cpu", amp=True).precision == "bfloat16 autocast on cpu"
    with pytest.raises(ConfigError, match="amp must be True, False or None"):
        book.start("smoke", amp="yes")


def test_pick_names_the_profile_it_lacks_instead_of_falling_back():
    setup = book.start("smoke", device="cpu")
    assert setup.pick(smoke=(8, 14), book=(8, 20)) == (8, 14)
    with pytest.raises(ConfigError, match="no value for profile 'smoke'.*book, full"):
        setup.pick(book=1, full=2)
    with pytest.raises(ConfigError, match="has no value for profile 'huge'"):
        profiles.choose({"book": 1}, "huge", "a chapter's sizes")
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        book.start("huge")


def test_a_reading_is_shown_as_markdown(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    book.reading("The **dense** network reaches 66 %.")
    assert shown and shown[0].data == "The **dense** network reaches 66 %."
    with pytest.raises(TypeError, match="a str"):
        book.reading(None)


def test_publish_shows_every_verdict_and_fills_the_one_minute_box(monkeypatch):
    shown, updated = [], []
    monkeypatch.setattr("IPython.display.display",  # myst-nb's glue passes raw dicts
                        lambda obj, **kw: shown.append((getattr(obj, "data", obj),
                                                        kw.get("display_id"))))
    monkeypatch.setattr("IPython.display.update_display",
                        lambda obj, **kw: updated.append((obj.data, kw.get("display_id"))))
    book.one_minute_box()
    assert shown[-1][1] == book.ONE_MINUTE_ID and book.PENDING in shown[-1][0]
    verdicts = [stats.Verdict("C9.9", stats.CONFIRMED, "It held."),
                stats.Verdict("C9.8", stats.INCONCLUSIVE, "It could not tell.")]
    book.publish(book.start("smoke", device="cpu"), "99-test", verdicts, "Two claims tested.")
    texts = [text for text, _ in shown[1:] if isinstance(text, str)]
    assert any("**C9.9**" in t and "confirmed" in t for t in texts)
    assert any("**C9.8**" in t and "inconclusive" in t for t in texts)
    (box, box_id), = updated
    assert box_id == book.ONE_MINUTE_ID and "Two claims tested." in box
    assert book.PENDING not in box and "convbook-verdict-confirmed" in box
    assert "This run reached its verdicts in" in box and "profile `smoke`, 1 seed," in box


def test_run_time_is_measured_from_the_start_and_names_the_machine(monkeypatch):
    setup = book.start("smoke", device="cpu")
    monkeypatch.setattr(book.timing, "_totals", {book.timing.TRAINING: 61.4})
    text = book.run_time_text(setup, now=setup.started + 125.2)
    assert "in 2 min 5 s (61 s of it training)" in text
    assert "CPU core" in text and "profile `smoke`" in text
    monkeypatch.setattr(book.timing, "_totals", {book.timing.CACHE_LOADS: 3.0})
    text = book.run_time_text(setup, now=setup.started + 9.6)
    assert "in 10 s (3 s loading runs an earlier run had cached)" in text


def _tiny_data():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (64,), generator=generator)
    from convbook.data import CifarData

    return CifarData((images, labels), (images[:32], labels[:32]), "64 random images")


def test_compare_from_setup_names_precision_and_keeps_each_runs_start():
    setup = book.start("smoke", device="cpu", amp=False)
    results = setup.compare({"net": partial(nets.CifarNet, 4)}, _tiny_data(), seeds=[3],
                            latency=False)
    assert results.precision == "float32 on cpu"
    assert "trained in float32 on cpu" in results.caption()
    assert f"torchvision {records.versions()['torchvision']}" in results.caption()
    variant = results["net"]
    torch.manual_seed(3)
    again = variant.initial_model(3).state_dict()
    from convbook.train import seed_everything

    seed_everything(3)
    first = nets.CifarNet(4).state_dict()
    assert all(torch.equal(again[k], first[k]) for k in first)


def _write_many(path, start, count):
    for i in range(start, start + count):
        records.update(path, f"key {i}", {"i": i})


def test_record_writers_in_two_processes_lose_nothing(tmp_path):
    path = tmp_path / "verdicts.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, start, 60))
               for start in (0, 1000)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    entries = json.loads(path.read_text())
    assert len(entries) == 120
    assert not list(tmp_path.glob("*.tmp"))


def test_a_verdict_on_its_own_seeds_is_recorded_with_them(tmp_path, monkeypatch):
    path = tmp_path / "verdicts.json"
    monkeypatch.setenv("CONVBOOK_VERDICTS", str(path))
    setup = book.start("smoke", device="cpu")
    book.record_verdict("99-test", stats.Verdict("C9.7", stats.CONFIRMED, "Held.",
                                                 numbers={"seeds": [0, 1, 2, 3]}), setup)
    book.record_verdict("99-test", stats.Verdict("C9.6", stats.CONFIRMED, "Held."), setup)
    recorded = json.loads(path.read_text())
    assert recorded["99-test:C9.7"]["seeds"] == [0, 1, 2, 3]
    assert recorded["99-test:C9.6"]["seeds"] == setup.seeds
