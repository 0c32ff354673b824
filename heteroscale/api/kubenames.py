"""Kubernetes' syntax for label keys and values, as the API server validates them (pure).

Shared by the PDServingGroup spec (topology labels) and the admin's config (shard selectors), which
must not import each other.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# An optional DNS-subdomain prefix, then a name of at most 63 characters.
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY_PATTERN = rf"^({_DNS_SUBDOMAIN}/)?{_LABEL_NAME}$"

LabelKey = Annotated[str, Field(pattern=LABEL_KEY_PATTERN, max_length=316)]
#: Empty, or up to 63 alphanumerics, '-', '_' and '.', beginning and ending with an alphanumeric.
LabelValue = Annotated[str, Field(pattern=rf"^({_LABEL_NAME})?$", max_length=63)]
