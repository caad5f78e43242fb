"""RFC 9967 test data shared by the SCIM tests of every role, and a recorder of SCIM signals."""

from __future__ import annotations

from django_ssf import signals
from django_ssf.core import constants as c
from django_ssf.core.scim import ScimEvent

# The URIs exactly as RFC 9967 §7.4 (Table 1) registers them, spelled out on purpose.
RFC_9967_URIS = {
    "urn:ietf:params:scim:event:feed:add": "RFC 9967 §2.3.1",
    "urn:ietf:params:scim:event:feed:remove": "RFC 9967 §2.3.2",
    "urn:ietf:params:scim:event:prov:create:notice": "RFC 9967 §2.4.1",
    "urn:ietf:params:scim:event:prov:create:full": "RFC 9967 §2.4.1",
    "urn:ietf:params:scim:event:prov:patch:notice": "RFC 9967 §2.4.2",
    "urn:ietf:params:scim:event:prov:patch:full": "RFC 9967 §2.4.2",
    "urn:ietf:params:scim:event:prov:put:notice": "RFC 9967 §2.4.3",
    "urn:ietf:params:scim:event:prov:put:full": "RFC 9967 §2.4.3",
    "urn:ietf:params:scim:event:prov:delete": "RFC 9967 §2.4.4",
    "urn:ietf:params:scim:event:prov:activate": "RFC 9967 §2.4.5",
    "urn:ietf:params:scim:event:prov:deactivate": "RFC 9967 §2.4.6",
    "urn:ietf:params:scim:event:misc:asyncresp": "RFC 9967 §2.5.1.3",
}

USER = {"format": "scim", "uri": "/Users/44f6142df96bd6ab61e7521d9", "externalId": "jdoe"}
GROUP = {"format": "scim", "uri": "/Groups/176f397ec4c44b94b2cfcb759780b8c2",
         "externalId": "crmUsers"}
PATCH_REQUEST = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "add",
        "path": "members",
        "value": [{"display": "Babs Jensen", "$ref": "/Users/2819c223",
                   "value": "2819c223-7f76-453a-919d-413861904646"}],
    }],
}
ERROR_RESPONSE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
    "scimType": "invalidSyntax",
    "detail": "Request is unparsable",
    "status": "400",
}


FULL = (c.SCIM_PROV_CREATE_FULL, c.SCIM_PROV_PATCH_FULL, c.SCIM_PROV_PUT_FULL)
NOTICE = (c.SCIM_PROV_CREATE_NOTICE, c.SCIM_PROV_PATCH_NOTICE, c.SCIM_PROV_PUT_NOTICE)
NO_PAYLOAD = (c.SCIM_PROV_DELETE, c.SCIM_PROV_ACTIVATE, c.SCIM_PROV_DEACTIVATE)

SIGNAL_OF = {
    c.SCIM_PROV_CREATE_FULL: "scim_resource_created",
    c.SCIM_PROV_CREATE_NOTICE: "scim_resource_created",
    c.SCIM_PROV_PATCH_FULL: "scim_resource_patched",
    c.SCIM_PROV_PATCH_NOTICE: "scim_resource_patched",
    c.SCIM_PROV_PUT_FULL: "scim_resource_replaced",
    c.SCIM_PROV_PUT_NOTICE: "scim_resource_replaced",
    c.SCIM_PROV_DELETE: "scim_resource_deleted",
    c.SCIM_PROV_ACTIVATE: "scim_resource_activated",
    c.SCIM_PROV_DEACTIVATE: "scim_resource_deactivated",
    c.SCIM_FEED_ADD: "scim_feed_added",
    c.SCIM_FEED_REMOVE: "scim_feed_removed",
    c.SCIM_MISC_ASYNC_RESPONSE: "scim_async_response",
}
SAMPLE_PAYLOAD = {
    **{uri: {"data": {"userName": "jdoe"}} for uri in FULL},
    **{uri: {"attributes": ["userName"]} for uri in NOTICE},
    c.SCIM_MISC_ASYNC_RESPONSE: {"method": "POST", "status": "201"},
}


class Recorder:
    """Connects to every SCIM signal; remembers (signal name, scim_event, event)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ScimEvent, object]] = []
        self._connected: list[tuple[object, object]] = []

    def __enter__(self) -> Recorder:
        for name in {*SIGNAL_OF.values(), "scim_event_received"}:
            signal = getattr(signals, name)

            def record(sender, scim_event, event, _name=name, **kwargs):
                self.calls.append((_name, scim_event, event))

            signal.connect(record, weak=False)
            self._connected.append((signal, record))
        return self

    def __exit__(self, *exc: object) -> None:
        for signal, func in self._connected:
            signal.disconnect(func)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]
