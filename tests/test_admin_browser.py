"""The data-management page (/admin) in Debian's Chromium against a real `geoserver serve` on a copy of the data."""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from geoserver.core.auth import TokenStore, tokens_path
from geoserver.core.service import DEFAULT_DATA_DIR
from tests.browser_support import PHONE, browser_page, launch_browser, screenshot
from tests.conftest import start_server, stop_server

FORMS = Path(__file__).parent / "data" / "import"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data = tmp_path_factory.mktemp("admin-browser") / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, data)
    token = TokenStore(tokens_path(data)).add("黄浦区总工会", ("stations",))
    url, proc = start_server({"GEOSERVER_DATA_DIR": str(data), "GEOSERVER_RELOAD_INTERVAL_S": "0.2"}, workers=1)
    yield url, token, data
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


def count(url: str) -> int:
    with urllib.request.urlopen(url + "/api/layers", timeout=10) as resp:
        return next(lay["count"] for lay in json.loads(resp.read())["layers"] if lay["id"] == "stations")


def test_sign_in_check_import_restore(browser, site, tmp_path):
    url, token, data = site
    with browser_page(browser, viewport=PHONE) as (page, log):
        page.goto(url + "/admin")
        page.fill("#token", "gsk_wrong")
        page.click("#signin-form button")
        page.wait_for_selector("#signin-error:not([hidden])")
        assert page.inner_text("#signin-error") == "令牌无效或已撤销 / The token is not valid (unknown or revoked)"
        console_401 = list(log.console_errors)  # the browser logs the refused request itself
        log.console_errors.clear()

        page.fill("#token", token)
        page.click("#signin-form button")
        page.wait_for_selector("#workspace:not([hidden])")
        assert page.inner_text("#who") == "操作人 / Operator: 黄浦区总工会"
        assert page.locator("#layer option").all_inner_texts() == ["工会驿站（户外职工爱心接力站） (stations)"]

        with page.expect_download() as got:
            page.click("#download-csv")
        exported = Path(got.value.path()).read_bytes().decode("utf-8-sig").splitlines()
        assert got.value.suggested_filename == "stations.csv" and len(exported) == 3401
        assert exported[0].startswith("编号,名称,行政区,街镇,具体门牌号,提供设施及服务,")

        page.set_input_files("#file", str(FORMS / "stations_gbk.csv"))
        page.select_option("#crs", "wgs84")
        page.click("button[value=check]")
        page.wait_for_selector("#result .summary")
        assert page.inner_text("#result .summary") == "检查完成：7/7 行有效，未修改数据 / Checked: 7 of 7 rows valid; nothing changed"
        assert count(url) == 3400

        page.click("button[value=import]")
        page.wait_for_selector("#result .summary.ok >> text=Imported as version 2")
        assert count(url) == 3407
        page.wait_for_selector("#history tbody tr >> nth=1")
        rows = page.locator("#history tbody tr").all_inner_texts()
        assert rows[0].split("\t")[0] == "v2" and "当前 / current" in rows[0]
        assert rows[1].split("\t")[0] == "v1" and "initial" in rows[1]
        page.wait_for_selector("#audit tbody tr")
        assert "黄浦区总工会" in page.inner_text("#audit tbody tr")
        screenshot(page, "admin-imported-phone.png")

        bad = tmp_path / "bad.csv"
        bad.write_text("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度\n"
                       "<img src=x onerror=alert(1)>站,黄浦区,人民大道1号,黄浦区总工会,饮水机,24/7,121.4737,31.2304\n",
                       encoding="utf-8")
        page.set_input_files("#file", str(bad))
        page.click("button[value=import]")
        page.wait_for_selector("#problems")
        assert page.inner_text("#result .summary").startswith("未导入任何数据 / Nothing was imported: 1 problems")
        cells = page.locator("#problems tbody tr td").all_inner_texts()
        assert cells[:2] == ["2", "提供设施及服务"]
        assert cells[3] == ("未知的服务“饮水机”，是否为“补水”（water）？\n"
                            "unknown service '饮水机'; did you mean 'Drinking water' (补水, water)?")
        assert page.locator("#result img").count() == 0  # file text is never HTML
        assert count(url) == 3407
        screenshot(page, "admin-refused-phone.png")

        page.on("dialog", lambda d: d.accept())
        page.click("#history button >> text=恢复 v1")
        page.wait_for_selector("#history tbody tr >> nth=2")
        first = page.locator("#history tbody tr").first.inner_text()
        assert first.startswith("v3") and "rollback" in first and "← v1" in first
        assert count(url) == 3400
        assert log.external == [] and log.page_errors == []
        # the only console messages are the browser's own notes of the refused requests (401, then 422)
        assert len(console_401) == 1 and "status of 401" in console_401[0]
        assert [c for c in log.console_errors if "status of 422" not in c] == []


def test_page_without_token_shows_only_sign_in(browser, site):
    url, _, _ = site
    with browser_page(browser) as (page, log):
        resp = page.goto(url + "/admin")
        assert resp.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        assert page.is_visible("#signin") and not page.is_visible("#workspace")
        assert log.problems == []


def public_feature(url: str, fid: str) -> dict:
    with urllib.request.urlopen(f"{url}/ogc/collections/stations/items/{fid}", timeout=10) as resp:
        return json.loads(resp.read())


def test_edit_create_and_delete_one_facility(browser, site):
    url, token, _ = site
    with browser_page(browser) as (page, log):
        page.goto(url + "/admin")
        page.fill("#token", token)
        page.click("#signin-form button")
        page.wait_for_selector("#workspace:not([hidden])")

        page.fill("#q", "ST00001")
        page.click("#search-form button[type=submit]")
        page.wait_for_selector("#matches li button")
        page.click("#matches li button >> text=ST00001 ·")
        page.wait_for_selector("#feature-form:not([hidden])")
        assert page.input_value("#f-id") == "ST00001"
        assert page.input_value("#f-contact_phone") == "10068693301"  # private fields are editable here
        page.fill("#f-opening_hours", "早8:00-晚8:00")
        page.fill("#f-contact_phone", "138-abcd")
        page.click("#feature-form button[type=submit]")
        page.wait_for_selector("#feature-result .problems")
        assert page.inner_text("#feature-result .problems") == (
            "手机号码：不是有效的电话号码：“138-abcd”\nnot a phone number: '138-abcd'")
        page.fill("#f-contact_phone", "13800001111")
        page.click("#feature-form button[type=submit]")
        page.wait_for_selector("#feature-result .ok")
        assert page.inner_text("#feature-result .ok").startswith("已保存为版本 ")
        public = public_feature(url, "ST00001")["properties"]
        assert public["opening_hours"] == "08:00-20:00"
        assert "contact_phone" not in public

        page.click("#new-feature")
        page.fill("#f-name", "人民公园东门驿站")
        page.fill("#f-address", "南京西路231号")
        page.fill("#f-host_org", "黄浦区总工会")
        page.fill("#f-opening_hours", "24/7")
        page.check("input[name=svc][value=water]")
        page.check("input[name=svc][value=rest]")
        page.fill("#f-lon", "121.4720")
        page.fill("#f-lat", "31.2330")
        page.click("#feature-form button[type=submit]")
        page.wait_for_selector("#feature-result .ok")
        saved = page.inner_text("#feature-result .ok")
        new_id = saved.rsplit(" · ", 1)[1]
        assert re.fullmatch(r"ST\d{5}", new_id) and int(new_id[2:]) > 3400
        created = public_feature(url, new_id)["properties"]
        assert (created["district"], created["services"]) == ("黄浦区", ["rest", "water"])

        page.on("dialog", lambda d: d.accept())
        page.click("#delete-feature")
        page.wait_for_selector(f"#feature-result .ok >> text=已删除 / Deleted {new_id}")
        with pytest.raises(urllib.error.HTTPError):
            public_feature(url, new_id)
        assert log.external == [] and log.page_errors == []
        assert [c for c in log.console_errors if "status of 422" not in c] == []
        screenshot(page, "admin-edit-desktop.png")
