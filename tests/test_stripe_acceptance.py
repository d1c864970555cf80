"""Issue 16, acceptance 2 (`-k stripe`): the outbox sender (`overture billing send`, a
real process) is killed with SIGKILL mid-batch, with Stripe holding an event whose
answer never came; Stripe then fails for a while; after recovery every roll-up is
reported exactly once and `overture billing reconcile` finds no difference."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from overture.billing import meter_outbox
from overture.billing import meters as m
from overture.billing.stripe_models import MeterEventRow
from overture.billing.usage import Entry, record
from overture.platform.db import db, scoped_to
from tests.engine_support import ROOT, settings_env
from tests.stripe_fake import SECRET, fake_stripe, use_stripe

HOURS = 24


@pytest.fixture
def fake(app, monkeypatch):
    with fake_stripe() as server:
        use_stripe(app, monkeypatch, server)
        yield server


def stripe_env(settings, fake):
    return settings_env(settings, STRIPE_API_KEY=SECRET, OVERTURE_STRIPE_API_BASE=fake.base,
                        OVERTURE_STRIPE_TIMEOUT_SECONDS="2", OVERTURE_STRIPE_MAX_RETRIES="1",
                        OVERTURE_STRIPE_SETTLE_MINUTES="10")


def cli(settings, fake, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "overture.cli", "billing", *args],
                          env=stripe_env(settings, fake), cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def work(world, start):
    """A day of usage in three workspaces of two agencies: steps, tokens per model."""
    for name in ("a", "b", "c"):
        with scoped_to(world.tenants[name].id):
            for h in range(HOURS):
                record([Entry(m.STEPS, Decimal(h + 1)),
                        Entry(m.INPUT_TOKENS, Decimal(10 * h + 7), "openai:gpt-4o-mini"),
                        Entry(m.INPUT_TOKENS, Decimal(3), "anthropic:claude")],
                       at=start + timedelta(hours=h, minutes=17))
            db.session.commit()


def test_stripe_sender_killed_mid_batch_and_stripe_down_still_reports_each_hour_once(
        world, fake, settings):
    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS + 2)
    work(world, start)
    expected = 3 * HOURS * 2  # tenants x hours x billed meters with usage

    fake.hang_after = 20  # Stripe keeps the 20th event; its answer never comes
    sender = subprocess.Popen([sys.executable, "-m", "overture.cli", "billing", "send"],
                              env=stripe_env(settings, fake), cwd=ROOT,
                              start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        assert fake.hung.wait(120), "the sender never reached the 20th event"
        os.killpg(sender.pid, signal.SIGKILL)
        sender.wait(timeout=30)
    finally:
        fake.release.set()
    assert len(fake.events) == 20
    left = meter_outbox.backlog()
    assert left.pending == expected - 19  # the 20th is in Stripe, not marked here

    fake.down = True  # Stripe fails for a while: rows stay, with their lease and delays
    later = now + timedelta(minutes=10)
    report = meter_outbox.send_due(now=later)
    assert report.sent == 0 and meter_outbox.backlog().pending == expected - 19
    fake.down = False
    for hours in range(1, 8):
        meter_outbox.send_due(now=later + timedelta(hours=hours))
        if meter_outbox.backlog().pending == 0:
            break
    assert meter_outbox.backlog().pending == 0

    assert len(fake.events) == expected  # each roll-up reported once
    posted = Counter(p.form["identifier"] for p in fake.event_posts())
    assert set(posted) == set(fake.events)  # never under another identifier
    assert set(fake.events) == outbox_identifiers(world)  # one event per roll-up row
    resent = [ident for ident, n in posted.items() if n > 1]
    assert resent  # the event the killed sender never heard back about went again...
    assert all(fake.events[ident] for ident in resent)  # ...and Stripe kept it once

    since = start.strftime("%Y-%m-%dT%H:00")
    until = (start + timedelta(hours=HOURS)).strftime("%Y-%m-%dT%H:00")
    checked = cli(settings, fake, "reconcile", "--since", since, "--until", until)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{2 * 2 * HOURS} hour(s) compared, 0 different" in checked.stdout

    fake.events["extra"] = {**next(iter(fake.events.values())), "identifier": "extra"}
    differs = cli(settings, fake, "reconcile", "--since", since, "--until", until)
    assert differs.returncode == 1 and "DIFFERENT:" in differs.stdout
    assert "1 different" in differs.stdout


def outbox_identifiers(world):
    found = set()
    for name in ("a", "b", "c"):
        with scoped_to(world.tenants[name].id):
            found |= set(db.session.scalars(select(MeterEventRow.identifier)
                                            .where(MeterEventRow.status == "sent")))
            db.session.rollback()
    return found


def test_stripe_reconcile_says_what_is_wrong_with_its_period(settings, fake, world):
    sent = cli(settings, fake, "send")
    assert sent.returncode == 0 and "backlog: 0 pending; 0 expired" in sent.stdout
    bad = cli(settings, fake, "reconcile", "--since", "yesterday", "--until", "2026-12-01")
    assert bad.returncode == 2
    assert "--since" in bad.stderr and "a date (YYYY-MM-DD)" in bad.stderr
    backwards = cli(settings, fake, "reconcile", "--since", "2026-12-05", "--until",
                    "2026-12-01")
    assert backwards.returncode == 2 and "must be after since" in backwards.stderr
