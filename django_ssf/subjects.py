"""Public subject-identifier API for host projects (RFC 9493, SSF 1.0 §3).

::

    from django_ssf.subjects import Subject, validate_subject, subjects_match

    alice = Subject.email("alice@example.com")

See ``docs/subjects.md`` for every format, complex subjects, matching and custom formats.
"""

from __future__ import annotations

from .core.errors import SubjectError
from .core.subjects import (
    FormatSpec,
    Subject,
    canonical_json,
    canonicalize,
    default_email_canonicalizer,
    from_legacy,
    get_format,
    is_complex,
    normalize_phone_number,
    register_format,
    registered_formats,
    subject_key,
    subjects_match,
    unknown_format_members,
    unprocessable_critical_members,
    unregister_format,
    validate_subject,
)

__all__ = [
    "FormatSpec",
    "Subject",
    "SubjectError",
    "canonical_json",
    "canonicalize",
    "default_email_canonicalizer",
    "from_legacy",
    "get_format",
    "is_complex",
    "normalize_phone_number",
    "register_format",
    "registered_formats",
    "subject_key",
    "subjects_match",
    "unknown_format_members",
    "unprocessable_critical_members",
    "unregister_format",
    "validate_subject",
]
