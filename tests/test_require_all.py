import pytest

pytest_plugins = ["pytester"]


def test_skip_becomes_failure_under_require_all(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile("import pytest\ndef test_x():\n    pytest.skip('no redis')\n")
    monkeypatch.setenv("TRIO_STREAM_REQUIRE_ALL", "1")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    monkeypatch.setenv("TRIO_STREAM_REQUIRE_ALL", "0")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
