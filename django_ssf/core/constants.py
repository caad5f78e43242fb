"""Protocol strings, each defined once.

Copied exactly from SSF 1.0 final, CAEP 1.0, RISC 1.0 and RFCs 8417/8935/8936/9493.
Never write one of these literals anywhere else: import it from here.
"""

from __future__ import annotations

from typing import Final

# ---- discovery (SSF §7.2) -------------------------------------------------------------
WELL_KNOWN_SSF: Final = "/.well-known/ssf-configuration"
WELL_KNOWN_RISC: Final = "/.well-known/risc-configuration"  # legacy RISC (SSF §7.2.2)
WELL_KNOWN_SSE: Final = "/.well-known/sse-configuration"  # draft ID1
WELL_KNOWN_PROTECTED_RESOURCE: Final = "/.well-known/oauth-protected-resource"  # RFC 9728
WELL_KNOWN_OAUTH_AS: Final = "/.well-known/oauth-authorization-server"  # RFC 8414
WELL_KNOWN_OIDC: Final = "/.well-known/openid-configuration"
SPEC_VERSION: Final = "1_0"

# ---- delivery methods (SSF §6.1) ------------------------------------------------------
DELIVERY_PUSH: Final = "urn:ietf:rfc:8935"
DELIVERY_POLL: Final = "urn:ietf:rfc:8936"
DELIVERY_METHODS: Final = (DELIVERY_PUSH, DELIVERY_POLL)
# Draft RISC delivery-method URIs still sent by older transmitters (SSF ID1).
LEGACY_DELIVERY_PUSH: Final = "https://schemas.openid.net/secevent/risc/delivery-method/push"
LEGACY_DELIVERY_POLL: Final = "https://schemas.openid.net/secevent/risc/delivery-method/poll"
LEGACY_DELIVERY_MAP: Final = {
    LEGACY_DELIVERY_PUSH: DELIVERY_PUSH,
    LEGACY_DELIVERY_POLL: DELIVERY_POLL,
}

# ---- SET media type (RFC 8417 §2.3, SSF §4.1.1) ---------------------------------------
SET_TYP: Final = "secevent+jwt"
SET_MEDIA_TYPE: Final = "application/secevent+jwt"

# ---- HTTP, on both sides of every exchange ------------------------------------------------
JSON_MEDIA_TYPE: Final = "application/json"
# The only language our error descriptions are written in: sent as ``Content-Language``
# with RFC 8935 §2.3 push errors and RFC 8936 §2.4.4 ``setErrs`` (English when the
# requested language is not available).
ERROR_LANGUAGE: Final = "en"
HEADER_CONTENT_LANGUAGE: Final = "Content-Language"
# Sent with every outbound request (both roles), so a remote party's logs say who asked.
USER_AGENT_PRODUCT: Final = "django-ssf"

# ---- authorization schemes (SSF §7.1.1) -----------------------------------------------
AUTH_SCHEME_OAUTH2: Final = "urn:ietf:rfc:6749"
AUTH_SCHEME_MTLS: Final = "urn:ietf:rfc:8705"

# ---- default_subjects (SSF §7.1) ------------------------------------------------------
DEFAULT_SUBJECTS_ALL: Final = "ALL"
DEFAULT_SUBJECTS_NONE: Final = "NONE"

# ---- stream status (SSF §8.1.2.1) -----------------------------------------------------
STATUS_ENABLED: Final = "enabled"
STATUS_PAUSED: Final = "paused"
STATUS_DISABLED: Final = "disabled"
STREAM_STATUSES: Final = (STATUS_ENABLED, STATUS_PAUSED, STATUS_DISABLED)

# ---- event-type URIs ------------------------------------------------------------------
SSF_EVENT_BASE: Final = "https://schemas.openid.net/secevent/ssf/event-type/"
CAEP_EVENT_BASE: Final = "https://schemas.openid.net/secevent/caep/event-type/"
RISC_EVENT_BASE: Final = "https://schemas.openid.net/secevent/risc/event-type/"
# Draft ID1 namespace for the SSF control events.
LEGACY_SSE_EVENT_BASE: Final = "https://schemas.openid.net/secevent/sse/event-type/"

EVENT_VERIFICATION: Final = SSF_EVENT_BASE + "verification"
EVENT_STREAM_UPDATED: Final = SSF_EVENT_BASE + "stream-updated"
LEGACY_EVENT_VERIFICATION: Final = LEGACY_SSE_EVENT_BASE + "verification"
LEGACY_EVENT_STREAM_UPDATED: Final = LEGACY_SSE_EVENT_BASE + "stream-updated"
# Control events every stream carries whether or not they were requested (SSF §8.1.4, §8.1.5).
CONTROL_EVENTS: Final = (EVENT_VERIFICATION, EVENT_STREAM_UPDATED)

CAEP_SESSION_REVOKED: Final = CAEP_EVENT_BASE + "session-revoked"
CAEP_TOKEN_CLAIMS_CHANGE: Final = CAEP_EVENT_BASE + "token-claims-change"
CAEP_CREDENTIAL_CHANGE: Final = CAEP_EVENT_BASE + "credential-change"
CAEP_ASSURANCE_LEVEL_CHANGE: Final = CAEP_EVENT_BASE + "assurance-level-change"
CAEP_DEVICE_COMPLIANCE_CHANGE: Final = CAEP_EVENT_BASE + "device-compliance-change"
CAEP_SESSION_ESTABLISHED: Final = CAEP_EVENT_BASE + "session-established"
CAEP_SESSION_PRESENTED: Final = CAEP_EVENT_BASE + "session-presented"
CAEP_RISK_LEVEL_CHANGE: Final = CAEP_EVENT_BASE + "risk-level-change"

RISC_ACCOUNT_CREDENTIAL_CHANGE_REQUIRED: Final = (
    RISC_EVENT_BASE + "account-credential-change-required"
)
RISC_ACCOUNT_PURGED: Final = RISC_EVENT_BASE + "account-purged"
RISC_ACCOUNT_DISABLED: Final = RISC_EVENT_BASE + "account-disabled"
RISC_ACCOUNT_ENABLED: Final = RISC_EVENT_BASE + "account-enabled"
RISC_IDENTIFIER_CHANGED: Final = RISC_EVENT_BASE + "identifier-changed"
RISC_IDENTIFIER_RECYCLED: Final = RISC_EVENT_BASE + "identifier-recycled"
RISC_CREDENTIAL_COMPROMISE: Final = RISC_EVENT_BASE + "credential-compromise"
RISC_OPT_IN: Final = RISC_EVENT_BASE + "opt-in"
RISC_OPT_OUT_INITIATED: Final = RISC_EVENT_BASE + "opt-out-initiated"
RISC_OPT_OUT_CANCELLED: Final = RISC_EVENT_BASE + "opt-out-cancelled"
RISC_OPT_OUT_EFFECTIVE: Final = RISC_EVENT_BASE + "opt-out-effective"
RISC_RECOVERY_ACTIVATED: Final = RISC_EVENT_BASE + "recovery-activated"
RISC_RECOVERY_INFORMATION_CHANGED: Final = RISC_EVENT_BASE + "recovery-information-changed"
RISC_SESSIONS_REVOKED: Final = RISC_EVENT_BASE + "sessions-revoked"  # deprecated (RISC §2.11)
RISC_OPT_EVENTS: Final = (
    RISC_OPT_IN,
    RISC_OPT_OUT_INITIATED,
    RISC_OPT_OUT_CANCELLED,
    RISC_OPT_OUT_EFFECTIVE,
)

# ---- SCIM events (RFC 9967 §2, §7.4) -------------------------------------------------
# URNs, not URLs: "urn:ietf:params:scim:event:{class}:{name}[:{other}]" (RFC 9967 §7.3).
SCIM_EVENT_BASE: Final = "urn:ietf:params:scim:event:"
SCIM_FEED_ADD: Final = SCIM_EVENT_BASE + "feed:add"  # RFC 9967 §2.3.1
SCIM_FEED_REMOVE: Final = SCIM_EVENT_BASE + "feed:remove"  # RFC 9967 §2.3.2
SCIM_PROV_CREATE_NOTICE: Final = SCIM_EVENT_BASE + "prov:create:notice"  # RFC 9967 §2.4.1
SCIM_PROV_CREATE_FULL: Final = SCIM_EVENT_BASE + "prov:create:full"  # RFC 9967 §2.4.1
SCIM_PROV_PATCH_NOTICE: Final = SCIM_EVENT_BASE + "prov:patch:notice"  # RFC 9967 §2.4.2
SCIM_PROV_PATCH_FULL: Final = SCIM_EVENT_BASE + "prov:patch:full"  # RFC 9967 §2.4.2
SCIM_PROV_PUT_NOTICE: Final = SCIM_EVENT_BASE + "prov:put:notice"  # RFC 9967 §2.4.3
SCIM_PROV_PUT_FULL: Final = SCIM_EVENT_BASE + "prov:put:full"  # RFC 9967 §2.4.3
SCIM_PROV_DELETE: Final = SCIM_EVENT_BASE + "prov:delete"  # RFC 9967 §2.4.4
SCIM_PROV_ACTIVATE: Final = SCIM_EVENT_BASE + "prov:activate"  # RFC 9967 §2.4.5
SCIM_PROV_DEACTIVATE: Final = SCIM_EVENT_BASE + "prov:deactivate"  # RFC 9967 §2.4.6
SCIM_MISC_ASYNC_RESPONSE: Final = SCIM_EVENT_BASE + "misc:asyncresp"  # RFC 9967 §2.5.1.3
SCIM_EVENTS: Final = (
    SCIM_FEED_ADD,
    SCIM_FEED_REMOVE,
    SCIM_PROV_CREATE_NOTICE,
    SCIM_PROV_CREATE_FULL,
    SCIM_PROV_PATCH_NOTICE,
    SCIM_PROV_PATCH_FULL,
    SCIM_PROV_PUT_NOTICE,
    SCIM_PROV_PUT_FULL,
    SCIM_PROV_DELETE,
    SCIM_PROV_ACTIVATE,
    SCIM_PROV_DEACTIVATE,
    SCIM_MISC_ASYNC_RESPONSE,
)
SCIM_MODE_FULL: Final = "full"  # RFC 9967 §2.4: the payload carries "data"
SCIM_MODE_NOTICE: Final = "notice"  # RFC 9967 §2.4: the payload carries "attributes"
# RFC 7644 §3.7: the methods of a bulk operation (and so of an asyncresp event).
SCIM_METHODS: Final = ("POST", "PUT", "PATCH", "DELETE")
SCIM_ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"  # RFC 7644 §3.12
SCIM_RESERVED_ID: Final = "bulkId"  # RFC 7643 §3.1: never a value of "id"
SCIM_ASYNC_REQUEST_MODES: Final = ("none", "long", "request")  # RFC 9967 §4 asyncRequest
# RFC 9967 §3 and §2.5.1.1 (with RFC 7240 §3, §4.1).
HEADER_SET_TXN: Final = "Set-Txn"
HEADER_PREFERENCE_APPLIED: Final = "Preference-Applied"
PREFER_RESPOND_ASYNC: Final = "respond-async"

# ---- event claim values (CAEP 1.0 §2-§3, RISC 1.0 §2) ---------------------------------
INITIATING_ENTITIES: Final = ("admin", "user", "policy", "system")  # CAEP §2
# CAEP §3.3 / RISC §2.7; other values both parties support are allowed too.
CREDENTIAL_TYPES: Final = (
    "password",
    "pin",
    "x509",
    "fido2-platform",
    "fido2-roaming",
    "fido-u2f",
    "verifiable-credential",
    "phone-voice",
    "phone-sms",
    "app",
)
CREDENTIAL_CHANGE_TYPES: Final = ("create", "revoke", "update", "delete")  # CAEP §3.3
# CAEP §3.4; a custom alias both parties agreed on is allowed too.
ASSURANCE_NAMESPACES: Final = (
    "RFC8176",
    "RFC6711",
    "ISO-IEC-29115",
    "NIST-IAL",
    "NIST-AAL",
    "NIST-FAL",
)
CHANGE_DIRECTIONS: Final = ("increase", "decrease")  # CAEP §3.4
COMPLIANCE_STATUSES: Final = ("compliant", "not-compliant")  # CAEP §3.5
RISK_LEVELS: Final = ("LOW", "MEDIUM", "HIGH")  # CAEP §3.8
# CAEP §3.8 examples; other principals are allowed.
RISK_PRINCIPALS: Final = ("USER", "DEVICE", "SESSION", "TENANT", "ORG_UNIT", "GROUP")
ACCOUNT_DISABLED_REASONS: Final = ("hijacking", "bulk-account")  # RISC §2.3

# ---- SET error codes (RFC 8935 §2.4, SSF §11) -----------------------------------------
ERR_INVALID_REQUEST: Final = "invalid_request"
ERR_INVALID_KEY: Final = "invalid_key"
ERR_INVALID_ISSUER: Final = "invalid_issuer"
ERR_INVALID_AUDIENCE: Final = "invalid_audience"
ERR_AUTHENTICATION_FAILED: Final = "authentication_failed"
ERR_ACCESS_DENIED: Final = "access_denied"
ERR_INVALID_STATE: Final = "invalid_state"
SET_ERROR_CODES: Final = (
    ERR_INVALID_REQUEST,
    ERR_INVALID_KEY,
    ERR_INVALID_ISSUER,
    ERR_INVALID_AUDIENCE,
    ERR_AUTHENTICATION_FAILED,
    ERR_ACCESS_DENIED,
    ERR_INVALID_STATE,
)

# ---- subject identifier formats (RFC 9493 §3.2, SSF §3.3, §3.5) ----------------------
FORMAT_ACCOUNT: Final = "account"
FORMAT_EMAIL: Final = "email"
FORMAT_ISS_SUB: Final = "iss_sub"
FORMAT_OPAQUE: Final = "opaque"
FORMAT_PHONE_NUMBER: Final = "phone_number"
FORMAT_DID: Final = "did"
FORMAT_URI: Final = "uri"
FORMAT_ALIASES: Final = "aliases"
FORMAT_JWT_ID: Final = "jwt_id"
FORMAT_SAML_ASSERTION_ID: Final = "saml_assertion_id"
FORMAT_IP_ADDRESSES: Final = "ip-addresses"
FORMAT_COMPLEX: Final = "complex"
FORMAT_SCIM: Final = "scim"  # RFC 9967 §2.1
COMPLEX_MEMBERS: Final = ("user", "device", "session", "application", "tenant", "org_unit", "group")

# ---- OAuth (RFC 6749, RFC 6750, IOP §2.7.2) -------------------------------------------
SCOPE_READ: Final = "ssf.read"
SCOPE_MANAGE: Final = "ssf.manage"
