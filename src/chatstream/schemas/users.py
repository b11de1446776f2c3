"""Request bodies of the user routes (wire names as the seed's clients send them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=1000)


class CaptchaBody(_Body):
    email: str = Field(min_length=1)


class RegisterBody(_Body):
    email: str = Field(min_length=1)
    password: str = Field(min_length=1)
    captcha: str | None = None
    username: str | None = None


class LoginBody(_Body):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
