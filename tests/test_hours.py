"""Opening hours evaluated in Shanghai time, with China's public holidays."""

from datetime import datetime, timezone

import numpy as np

from geoserver.core.hours import HoursTable, as_shanghai, validate


def at(text):
    return as_shanghai(datetime.fromisoformat(text))


def test_open_mask_at_literal_times():
    table = HoursTable(["24/7", "Mo-Fr 09:00-17:00", "Sa,Su 10:00-16:00", None])
    everyone = np.arange(4)
    assert table.open_mask(everyone, at("2026-11-25T10:00")).tolist() == [True, True, False, False]  # Wednesday
    assert table.open_mask(everyone, at("2026-11-25T18:30")).tolist() == [True, False, False, False]
    assert table.open_mask(everyone, at("2026-11-28T11:00")).tolist() == [True, False, True, False]  # Saturday


def test_public_holiday_rule_uses_chinese_holidays():
    table = HoursTable(["Mo-Fr 08:00-18:00; PH off"])
    assert table.open_mask(np.array([0]), at("2026-10-01T10:00")).tolist() == [False]  # National Day, Thursday
    assert table.open_mask(np.array([0]), at("2026-10-15T10:00")).tolist() == [True]


def test_utc_input_is_converted_to_shanghai_time():
    table = HoursTable(["Mo-Fr 09:00-17:00"])
    # 01:30 UTC is 09:30 in Shanghai.
    utc = datetime(2026, 11, 25, 1, 30, tzinfo=timezone.utc)
    assert table.is_open(0, as_shanghai(utc)) is True


def test_cached_state_follows_time_both_ways():
    table = HoursTable(["Mo-Fr 09:00-17:00"])
    times = ["2026-11-25T10:00", "2026-11-25T16:59", "2026-11-25T17:00", "2026-11-25T09:30", "2026-11-24T08:59"]
    assert [table.is_open(0, at(t)) for t in times] == [True, True, False, True, False]


def test_validate():
    assert validate("Mo-Su 07:00-21:00")
    assert validate("24/7")
    assert not validate("Mo-Fx 8-9")
    assert not validate("")
