"""The example project's SCIM provisioning: a user the IdP creates is created here too.

django-ssf turns a received SCIM ``prov:create`` event (RFC 9967 §2.4.1) into the
``scim_resource_created`` signal and changes nothing itself; this receiver is the host's
mapping to its own accounts. Only ``Users`` resources with a ``userName`` are handled;
the new account gets an unusable password (it signs in through the IdP).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.dispatch import receiver

from django_ssf.signals import scim_resource_created

logger = logging.getLogger(__name__)


@receiver(scim_resource_created, dispatch_uid="example_project.provision_scim_user")
def provision_user(sender: Any, scim_event: Any, **kwargs: Any) -> None:
    if scim_event.resource_type != "Users":
        return
    data = scim_event.data or {}
    username = data.get("userName")
    if not isinstance(username, str) or not username:
        return
    emails = data.get("emails") or []
    email = next((e.get("value") for e in emails if isinstance(e, dict) and e.get("value")), "")
    user_model = get_user_model()
    user, created = user_model._default_manager.get_or_create(
        **{user_model.USERNAME_FIELD: username}, defaults={"email": email or ""}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        logger.warning(
            "provisioned user %s from SCIM resource %s", username, scim_event.resource_uri
        )
