"""Shared by the portal tests: a config with the portal set up, a directory to publish."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from mailserver.app import App
from mailserver.config import Config
from mailserver.directory.service import DirectoryService
from mailserver.web.settings import WebSettings
from storage.directory import By, open_directory
from tests.conftest import make_config

OPERATOR = "vanhanh@dongnai.gov.vn"
OPERATOR_PASSWORD = "Op-Secret-2024!x"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def portal_config(data_dir: Path, **web: object) -> Config:
    config = make_config(data_dir)
    settings = {"listen": "127.0.0.1:0", "operators": [OPERATOR], **web}
    return replace(config, web=WebSettings(**settings))  # type: ignore[arg-type]


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def seed_directory(app: App) -> DirectoryService:
    """Agencies with Vietnamese names (and one person), as the Sở would create them."""
    service = DirectoryService(app.store, open_directory(app.store), app.config)
    by = By("test", "Số 1/QĐ-STTTT")
    await service.add_agency("ubnd", "Ủy ban nhân dân tỉnh Đồng Nai", None, by=by)
    await service.add_agency("stttt", "Sở Thông tin và Truyền thông", "ubnd", by=by)
    await service.add_agency("sgdđt", "Sở Giáo dục và Đào tạo", "ubnd", by=by)
    await service.add_person("Nguyễn Văn An", "stttt", by=by, position="Chuyên viên")
    return service
