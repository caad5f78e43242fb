"""JOSE for SETs: signing, verification rules (RFC 8417, SSF §4, RFC 8935 §2.4), JWE."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.core.errors import SETValidationError, SSFKeyError

ISS = "https://tx.example.com"
AUD = "https://rx.example.com"
EVENT = c.CAEP_SESSION_REVOKED
SUB_ID = {"format": "email", "email": "alice@example.com"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: object) -> str:
    return b64(json.dumps(obj).encode())


@pytest.fixture(scope="module")
def keys() -> dict:
    """One private key per signing algorithm, plus their public JWKs."""
    result = {}
    for alg in jose.SIGNING_ALGORITHMS:
        key = jose.generate_private_key(alg)
        result[alg] = (key, jose.public_jwk(key, kid=f"kid-{alg}", alg=alg))
    return result


@pytest.fixture(scope="module")
def rsa_key(keys):
    return keys["RS256"][0]


@pytest.fixture(scope="module")
def resolver(keys):
    return jose.jwks_key_resolver({"keys": [jwk for _, jwk in keys.values()]})


def claims(**overrides) -> dict:
    base = jose.build_set_claims(
        iss=ISS, aud=AUD, event_type=EVENT, event={"event_timestamp": 1}, sub_id=SUB_ID
    )
    for name, value in overrides.items():
        if value is ...:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def sign(rsa_key, payload: dict, **header_overrides) -> str:
    """RS256-sign ``payload`` with full control over the header (for negative tests)."""
    header = {"alg": "RS256", "typ": c.SET_TYP, "kid": "kid-RS256", **header_overrides}
    header = {k: v for k, v in header.items() if v is not ...}
    return jwt.api_jws.PyJWS().encode(
        json.dumps(payload).encode(), rsa_key, algorithm="RS256", headers=header
    )


def verify(token: str, resolver, **kwargs) -> dict:
    kwargs.setdefault("issuer", ISS)
    kwargs.setdefault("audience", AUD)
    return jose.verify_set(token, key_resolver=resolver, **kwargs)


def error_code(token: str, resolver, **kwargs) -> str:
    with pytest.raises(SETValidationError) as info:
        verify(token, resolver, **kwargs)
    assert info.value.description
    return info.value.code


# ---- building and signing ------------------------------------------------------------


def test_build_set_claims_defaults():
    before = int(time.time())
    out = jose.build_set_claims(
        iss=ISS, aud=[AUD], event_type=EVENT, event={}, sub_id=SUB_ID, txn="t-1"
    )
    assert out["iss"] == ISS and out["aud"] == [AUD] and out["txn"] == "t-1"
    assert out["events"] == {EVENT: {}}
    assert out["sub_id"] == SUB_ID
    assert before <= out["iat"] <= int(time.time())
    assert isinstance(out["jti"], str) and len(out["jti"]) >= 16
    assert "sub" not in out and "exp" not in out
    other = jose.build_set_claims(iss=ISS, aud=AUD, event_type=EVENT, event={}, sub_id=SUB_ID)
    assert other["jti"] != out["jti"]
    assert "txn" not in other


def test_build_set_claims_explicit_values_and_extra():
    out = jose.build_set_claims(
        iss=ISS,
        aud=AUD,
        event_type=EVENT,
        event={},
        sub_id=SUB_ID,
        jti="abc",
        iat=123,
        extra={"toe": 100},
    )
    assert (out["jti"], out["iat"], out["toe"]) == ("abc", 123, 100)


@pytest.mark.parametrize("extra", [{"sub": "x"}, {"exp": 1}, {"iss": "other"}])
def test_build_set_claims_refuses_sub_exp_and_overrides(extra):
    with pytest.raises(ValueError):
        jose.build_set_claims(
            iss=ISS, aud=AUD, event_type=EVENT, event={}, sub_id=SUB_ID, extra=extra
        )


def test_build_set_claims_refuses_bad_shapes():
    with pytest.raises(ValueError):
        jose.build_set_claims(iss=ISS, aud=AUD, event_type=EVENT, event=[], sub_id=SUB_ID)
    with pytest.raises(ValueError):
        jose.build_set_claims(iss=ISS, aud=AUD, event_type=EVENT, event={}, sub_id="x")
    with pytest.raises(ValueError):
        jose.build_set_claims(iss=ISS, aud=AUD, event_type=EVENT, event={}, sub_id=SUB_ID, txn=5)


@pytest.mark.parametrize("alg", jose.SIGNING_ALGORITHMS)
def test_sign_and_verify_round_trip_each_algorithm(alg, keys, resolver):
    key, jwk = keys[alg]
    assert "d" not in jwk and jwk["use"] == "sig" and jwk["alg"] == alg
    payload = claims()
    token = jose.sign_set(payload, key=key, kid=f"kid-{alg}", alg=alg)
    header = jose.peek_header(token)
    assert header == {"alg": alg, "typ": "secevent+jwt", "kid": f"kid-{alg}"}
    assert jose.peek_claims(token) == payload
    assert verify(token, resolver) == payload


def test_rsa_keys_are_at_least_2048_bits():
    assert jose.generate_private_key("RS256").key_size == 2048
    assert jose.generate_private_key("PS256", rsa_key_size=3072).key_size == 3072
    with pytest.raises(SSFKeyError):
        jose.generate_private_key("RS256", rsa_key_size=1024)
    with pytest.raises(SSFKeyError):
        jose.generate_encryption_private_key("RSA-OAEP-256", rsa_key_size=1024)


def test_generated_key_types():
    assert isinstance(jose.generate_private_key("ES256").curve, ec.SECP256R1)
    assert isinstance(jose.generate_encryption_private_key("ECDH-ES+A256KW").curve, ec.SECP256R1)
    for bad in ("HS256", "none", "RS384"):
        with pytest.raises(SSFKeyError):
            jose.generate_private_key(bad)
    with pytest.raises(SSFKeyError):
        jose.generate_encryption_private_key("RSA1_5")


def test_sign_set_refuses_unsafe_algorithms_and_mismatched_keys(keys, rsa_key):
    for alg in ("none", "HS256"):
        with pytest.raises(SSFKeyError):
            jose.sign_set(claims(), key=rsa_key, kid="k", alg=alg)
    with pytest.raises(SSFKeyError):
        jose.sign_set(claims(), key=keys["ES256"][0], kid="k", alg="RS256")
    with pytest.raises(SSFKeyError):
        jose.sign_set(claims(), key=rsa_key.public_key(), kid="k", alg="RS256")
    with pytest.raises(ValueError):
        jose.sign_set({**claims(), "sub": "x"}, key=rsa_key, kid="k", alg="RS256")


def test_jwk_round_trips(keys):
    for alg, (key, jwk) in keys.items():
        public = jose.jwk_to_key(jwk)
        assert public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        priv = jose.private_jwk(key, kid="k", alg=alg)
        assert "d" in priv and priv["kid"] == "k"
        assert type(jose.jwk_to_key(priv)) is type(key)
    with pytest.raises(SSFKeyError):
        jose.private_jwk(keys["RS256"][0].public_key(), kid="k", alg="RS256")
    for bad in ({"kty": "oct", "k": "AAAA"}, {"kty": "RSA"}, "x", {"kty": "EC", "crv": "P-256"}):
        with pytest.raises(SSFKeyError):
            jose.jwk_to_key(bad)


def test_thumbprint_is_stable(rsa_key):
    assert jose.jwk_thumbprint(rsa_key) == jose.jwk_thumbprint(rsa_key.public_key())
    assert len(jose.jwk_thumbprint(rsa_key)) == 43


# ---- verification: the negatives ----------------------------------------------------


def test_alg_none_forgery_is_rejected(resolver):
    token = f"{b64json({'alg': 'none', 'typ': c.SET_TYP})}.{b64json(claims())}."
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST
    token = f"{b64json({'alg': 'NoNe', 'typ': c.SET_TYP, 'kid': 'kid-RS256'})}.{b64json(claims())}."
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


def test_hs256_signed_with_the_rsa_public_key_is_rejected(rsa_key, resolver):
    """The classic key-confusion forgery: HMAC keyed with the public key PEM."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64json({"alg": "HS256", "typ": c.SET_TYP, "kid": "kid-RS256"})
    payload = b64json(claims())
    mac = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{b64(mac)}"
    assert error_code(forged, resolver) == c.ERR_INVALID_REQUEST
    # Even when a careless caller puts HS256 in the allow-list, and the resolver returns the
    # PEM bytes, nothing verifies with HMAC.
    assert error_code(forged, lambda h: pem, allowed_algs=["HS256", "RS256"]) in (
        c.ERR_INVALID_REQUEST,
        c.ERR_INVALID_KEY,
    )


def test_alg_missing_or_not_allowed(rsa_key, resolver, keys):
    token = sign(rsa_key, claims())
    assert error_code(token, resolver, allowed_algs=["ES256"]) == c.ERR_INVALID_REQUEST
    header = {"typ": c.SET_TYP, "kid": "kid-RS256"}
    no_alg = f"{b64json(header)}.{b64json(claims())}.{token.split('.')[2]}"
    assert error_code(no_alg, resolver) == c.ERR_INVALID_REQUEST
    other = jose.sign_set(claims(), key=keys["PS256"][0], kid="kid-PS256", alg="PS256")
    assert verify(other, resolver, allowed_algs=["PS256"])["iss"] == ISS


def test_unknown_kid_is_invalid_key(rsa_key, resolver):
    token = sign(rsa_key, claims(), kid="nope")
    assert error_code(token, resolver) == c.ERR_INVALID_KEY


def test_a_failing_resolver_is_not_a_verdict_on_the_set(rsa_key):
    """A resolver that breaks (database, key provider) raises its own error, never an
    RFC 8935 code: the caller must answer 5xx / not acknowledge, not reject (issue 11)."""
    token = sign(rsa_key, claims())

    def broken(header):
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        verify(token, broken)


def test_unusable_resolved_keys_are_invalid_key(rsa_key):
    token = sign(rsa_key, claims())
    assert error_code(token, lambda h: None) == c.ERR_INVALID_KEY
    assert error_code(token, lambda h: b"secret") == c.ERR_INVALID_KEY
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert error_code(token, lambda h: small.public_key()) == c.ERR_INVALID_KEY


def test_resolver_may_return_pyjwk_or_private_key(rsa_key, keys):
    token = sign(rsa_key, claims())
    jwk = keys["RS256"][1]
    assert verify(token, lambda h: jwt.PyJWK(jwk))["jti"]
    assert verify(token, lambda h: rsa_key)["jti"]
    assert error_code(token, lambda h: jwt.PyJWK(keys["ES256"][1])) == c.ERR_INVALID_KEY
    assert error_code(token, lambda h: jwt.PyJWK({**jwk, "alg": "PS256"})) == c.ERR_INVALID_KEY
    # a JWK without alg fits any algorithm of its key type
    ps = jose.sign_set(claims(), key=rsa_key, kid="kid-RS256", alg="PS256")
    no_alg = {k: v for k, v in jwk.items() if k != "alg"}
    assert verify(ps, lambda h: jwt.PyJWK(no_alg))["jti"]


def test_wrong_key_is_invalid_key(rsa_key, keys):
    other = jose.generate_private_key("RS256")
    token = jose.sign_set(claims(), key=other, kid="kid-RS256", alg="RS256")
    assert error_code(token, lambda h: keys["RS256"][1] and rsa_key.public_key()) == (
        c.ERR_INVALID_KEY
    )


def test_tampered_payload_is_invalid_key(rsa_key, resolver):
    token = sign(rsa_key, claims())
    header, _, signature = token.split(".")
    tampered = f"{header}.{b64json(claims(iss=ISS, aud='https://evil'))}.{signature}"
    assert error_code(tampered, resolver) == c.ERR_INVALID_KEY
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    bad_signature = f"{header}.{token.split('.')[1]}.{flipped}"
    assert error_code(bad_signature, resolver) == c.ERR_INVALID_KEY


@pytest.mark.parametrize("typ", [..., "JWT", "jwt", "secevent", "application/jwt", 7, None])
def test_missing_or_wrong_typ_is_rejected(rsa_key, resolver, typ):
    token = sign(rsa_key, claims(), typ=typ)
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


@pytest.mark.parametrize(
    "typ", ["secevent+jwt", "application/secevent+jwt", "SECEVENT+JWT", "Application/SecEvent+JWT"]
)
def test_typ_variants_accepted(rsa_key, resolver, typ):
    assert verify(sign(rsa_key, claims(), typ=typ), resolver)["iss"] == ISS


def test_crit_and_non_string_kid_rejected(rsa_key, resolver):
    token = sign(rsa_key, claims(), crit=["exp"], exp=1)
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST
    header = b64json({"alg": "RS256", "typ": c.SET_TYP, "kid": 5})
    token = f"{header}.{b64json(claims())}.AAAA"
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


@pytest.mark.parametrize("claim", ["sub", "exp"])
def test_sub_or_exp_present_is_rejected(rsa_key, resolver, claim):
    token = sign(rsa_key, claims(**{claim: "x" if claim == "sub" else int(time.time()) + 60}))
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


def test_exactly_one_event(rsa_key, resolver):
    two = claims(events={EVENT: {}, c.CAEP_CREDENTIAL_CHANGE: {}})
    assert error_code(sign(rsa_key, two), resolver) == c.ERR_INVALID_REQUEST
    assert error_code(sign(rsa_key, claims(events={})), resolver) == c.ERR_INVALID_REQUEST
    assert error_code(sign(rsa_key, claims(events=...)), resolver) == c.ERR_INVALID_REQUEST
    assert error_code(sign(rsa_key, claims(events=[EVENT])), resolver) == c.ERR_INVALID_REQUEST
    assert error_code(sign(rsa_key, claims(events={"": {}})), resolver) == c.ERR_INVALID_REQUEST


@pytest.mark.parametrize("value", ["x", None, [], 1, True])
def test_event_value_must_be_object(rsa_key, resolver, value):
    token = sign(rsa_key, claims(events={EVENT: value}))
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


def test_issuer(rsa_key, resolver):
    assert error_code(sign(rsa_key, claims(iss="https://evil")), resolver) == c.ERR_INVALID_ISSUER
    assert error_code(sign(rsa_key, claims(iss=...)), resolver) == c.ERR_INVALID_ISSUER
    assert error_code(sign(rsa_key, claims(iss=ISS + "/")), resolver) == c.ERR_INVALID_ISSUER


def test_audience(rsa_key, resolver):
    assert error_code(sign(rsa_key, claims(aud="https://other")), resolver) == (
        c.ERR_INVALID_AUDIENCE
    )
    assert error_code(sign(rsa_key, claims(aud=...)), resolver) == c.ERR_INVALID_AUDIENCE
    assert error_code(sign(rsa_key, claims(aud=["a", "b"])), resolver) == c.ERR_INVALID_AUDIENCE
    assert error_code(sign(rsa_key, claims(aud=5)), resolver) == c.ERR_INVALID_REQUEST
    assert error_code(sign(rsa_key, claims(aud=[AUD, 5])), resolver) == c.ERR_INVALID_REQUEST
    # a list containing our audience; several accepted audiences; no audience check
    assert verify(sign(rsa_key, claims(aud=["x", AUD])), resolver)["aud"] == ["x", AUD]
    assert verify(sign(rsa_key, claims(aud="y")), resolver, audience=["x", "y"])["aud"] == "y"
    assert verify(sign(rsa_key, claims(aud="zzz")), resolver, audience=None)["aud"] == "zzz"


def test_iat_rules(rsa_key, resolver):
    now = time.time()
    assert error_code(sign(rsa_key, claims(iat=...)), resolver) == c.ERR_INVALID_REQUEST
    for bad in ("123", None, True, [1]):
        assert error_code(sign(rsa_key, claims(iat=bad)), resolver) == c.ERR_INVALID_REQUEST
    future = int(now) + 600
    assert error_code(sign(rsa_key, claims(iat=future)), resolver) == c.ERR_INVALID_REQUEST
    # within leeway, explicit `now`, floats, and old SETs are fine
    assert verify(sign(rsa_key, claims(iat=int(now) + 30)), resolver)["iat"] == int(now) + 30
    assert verify(sign(rsa_key, claims(iat=future)), resolver, now=future - 10)
    assert verify(sign(rsa_key, claims(iat=future)), resolver, leeway=700)
    assert verify(sign(rsa_key, claims(iat=now - 0.5)), resolver)
    assert verify(sign(rsa_key, claims(iat=1)), resolver)


def test_non_finite_iat_rejected(rsa_key, resolver):
    payload = json.dumps(claims()).replace(f'"iat": {claims()["iat"]}', '"iat": 1e400')
    token = jwt.api_jws.PyJWS().encode(
        payload.encode(),
        rsa_key,
        algorithm="RS256",
        headers={"typ": c.SET_TYP, "kid": "kid-RS256"},
    )
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


@pytest.mark.parametrize("jti", [..., "", 5, None, ["a"]])
def test_jti_rules(rsa_key, resolver, jti):
    assert error_code(sign(rsa_key, claims(jti=jti)), resolver) == c.ERR_INVALID_REQUEST


def test_numeric_txn(rsa_key, resolver):
    token = sign(rsa_key, claims(txn=8675309))
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST
    assert verify(token, resolver, allow_numeric_txn=True)["txn"] == "8675309"
    assert error_code(sign(rsa_key, claims(txn=[1])), resolver, allow_numeric_txn=True) == (
        c.ERR_INVALID_REQUEST
    )
    assert verify(sign(rsa_key, claims(txn="abc")), resolver)["txn"] == "abc"


def test_sub_id_rules(rsa_key, resolver):
    assert error_code(sign(rsa_key, claims(sub_id=...)), resolver) == c.ERR_INVALID_REQUEST
    assert error_code(sign(rsa_key, claims(sub_id="x")), resolver) == c.ERR_INVALID_REQUEST
    out = verify(sign(rsa_key, claims(sub_id=...)), resolver, require_sub_id=False)
    assert "sub_id" not in out
    assert error_code(sign(rsa_key, claims(sub_id=1)), resolver, require_sub_id=False) == (
        c.ERR_INVALID_REQUEST
    )


def test_unknown_claims_are_ignored(rsa_key, resolver):
    out = verify(sign(rsa_key, claims(toe=1, custom={"a": 1})), resolver)
    assert out["custom"] == {"a": 1}


def test_duplicate_json_members_rejected(rsa_key, resolver):
    raw = json.dumps(claims())[:-1] + ', "jti": "again"}'
    token = jwt.api_jws.PyJWS().encode(
        raw.encode(), rsa_key, algorithm="RS256", headers={"typ": c.SET_TYP, "kid": "kid-RS256"}
    )
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.???.###",
        "e30.e30.",
        "W10.e30.AAAA",
        b64json({"alg": "RS256"}) + ".***.AAAA",
        "a.b.c.d.e",
        ".....",
    ],
)
def test_garbage_is_invalid_request(resolver, token):
    assert error_code(token, resolver) == c.ERR_INVALID_REQUEST


def test_non_string_token_is_invalid_request(resolver):
    assert error_code(None, resolver) == c.ERR_INVALID_REQUEST
    assert error_code(b"\xff\xfe", resolver) == c.ERR_INVALID_REQUEST


def test_bytes_and_whitespace_tolerated(rsa_key, resolver):
    token = sign(rsa_key, claims())
    assert verify(token.encode() + b"\n", resolver)["iss"] == ISS


def test_peek_helpers(rsa_key):
    token = sign(rsa_key, claims())
    assert jose.peek_header(token)["alg"] == "RS256"
    assert jose.peek_claims(token)["iss"] == ISS
    for bad in ("x", "a.b.c", None, "e30.W10.x"):
        with pytest.raises(SETValidationError) as info:
            jose.peek_claims(bad)
        assert info.value.code == c.ERR_INVALID_REQUEST
    with pytest.raises(SETValidationError):
        jose.peek_header("W10.e30.x")
    with pytest.raises(SETValidationError):
        jose.peek_claims("e30.e30.e30.e30.e30")


def test_jwks_resolver_without_kid(keys):
    es_key, es_jwk = keys["ES256"]
    token = jwt.encode(claims(), es_key, algorithm="ES256", headers={"typ": c.SET_TYP})
    only_es = jose.jwks_key_resolver({"keys": [es_jwk]})
    assert verify(token, only_es)["iss"] == ISS
    two = jose.jwks_key_resolver({"keys": [es_jwk, {**es_jwk, "kid": "other"}]})
    assert error_code(token, two) == c.ERR_INVALID_KEY
    # a key published for encryption never verifies
    enc_only = jose.jwks_key_resolver({"keys": [{**es_jwk, "use": "enc"}]})
    assert error_code(token, enc_only) == c.ERR_INVALID_KEY


# ---- property test ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
claim_overrides = st.dictionaries(
    st.sampled_from(["iss", "aud", "iat", "jti", "sub", "exp", "events", "txn", "sub_id", "x"]),
    json_values,
    max_size=9,
)
# Either arbitrary claims, or valid claims with some members replaced by arbitrary JSON
# (so that the later validation steps are reached too).
claim_dicts = st.one_of(
    claim_overrides,
    st.builds(lambda o: {**claims(), **o}, claim_overrides),
    st.builds(lambda e: claims(events=e), json_values),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_property_arbitrary_text_only_raises_set_validation_error(text, resolver):
    for candidate in (text, text.replace(" ", "."), f"{text}.{text}.{text}"):
        try:
            jose.verify_set(candidate, key_resolver=resolver, issuer=ISS, audience=AUD)
        except SETValidationError as exc:
            assert exc.code in c.SET_ERROR_CODES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=claim_dicts, header_extra=st.dictionaries(st.text(max_size=5), json_values, max_size=3)
)
def test_property_signed_arbitrary_claims_only_raise_set_validation_error(
    payload, header_extra, keys, resolver
):
    key = keys["ES256"][0]  # fast to sign with
    header = {**header_extra, "typ": c.SET_TYP, "kid": "kid-ES256"}
    header.pop("alg", None)
    header.pop("b64", None)
    header.pop("crit", None)
    try:
        token = jwt.api_jws.PyJWS().encode(
            json.dumps(payload).encode(), key, algorithm="ES256", headers=header
        )
    except (TypeError, ValueError, jwt.exceptions.InvalidTokenError):
        return
    try:
        out = jose.verify_set(token, key_resolver=resolver, issuer=ISS, audience=AUD)
    except SETValidationError as exc:
        assert exc.code in c.SET_ERROR_CODES
    else:
        assert out["iss"] == ISS and len(out["events"]) == 1


# ---- JWE ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enc_keys() -> dict:
    result = {}
    for alg in jose.ENCRYPTION_ALGORITHMS:
        key = jose.generate_encryption_private_key(alg)
        result[alg] = (
            jose.public_jwk(key, kid=f"enc-{alg}", alg=alg, use="enc"),
            jose.private_jwk(key, kid=f"enc-{alg}", alg=alg, use="enc"),
        )
    return result


@pytest.mark.parametrize("alg", jose.ENCRYPTION_ALGORITHMS)
def test_jwe_round_trip(alg, enc_keys, rsa_key, resolver):
    public, private = enc_keys[alg]
    inner = sign(rsa_key, claims())
    outer = jose.encrypt_set(inner, public, alg=alg)
    assert jose.is_jwe(outer) and not jose.is_jwe(inner)
    header = jose.peek_header(outer)
    assert header["cty"] == "JWT" and header["alg"] == alg and header["enc"] == "A256GCM"
    assert header["kid"] == f"enc-{alg}"
    other_alg = next(a for a in jose.ENCRYPTION_ALGORITHMS if a != alg)
    # the matching key is found by kid among several
    assert jose.decrypt_set(outer, [enc_keys[other_alg][1], private]) == inner
    assert verify(jose.decrypt_set(outer, [private]), resolver)["iss"] == ISS


def test_jwe_without_kid_tries_each_key(enc_keys, rsa_key):
    public, private = enc_keys["RSA-OAEP-256"]
    inner = sign(rsa_key, claims())
    no_kid = {k: v for k, v in public.items() if k != "kid"}
    outer = jose.encrypt_set(inner, no_kid, enc="A128GCM")
    assert "kid" not in jose.peek_header(outer)
    wrong = jose.private_jwk(
        jose.generate_encryption_private_key("RSA-OAEP-256"), kid="w", alg="RSA-OAEP-256"
    )
    assert jose.decrypt_set(outer, [wrong, private]) == inner


def test_jwe_wrong_key_is_invalid_key(enc_keys, rsa_key):
    public, _private = enc_keys["RSA-OAEP-256"]
    outer = jose.encrypt_set(sign(rsa_key, claims()), public)
    other = jose.generate_encryption_private_key("RSA-OAEP-256")
    same_kid = jose.private_jwk(other, kid=public["kid"], alg="RSA-OAEP-256", use="enc")
    for keyset in ([same_kid], [], [{**same_kid, "kid": "x"}], [enc_keys["ECDH-ES+A256KW"][1]]):
        with pytest.raises(SETValidationError) as info:
            jose.decrypt_set(outer, keyset)
        assert info.value.code == c.ERR_INVALID_KEY


@pytest.mark.parametrize(
    "token",
    [
        "a.b.c.d.e",
        "....",
        "x",
        b64json({"alg": "RSA1_5", "enc": "A256GCM"}) + ".AA.AA.AA.AA",
        b64json({"alg": "dir", "enc": "A256GCM"}) + ".AA.AA.AA.AA",
        b64json({"alg": "RSA-OAEP-256", "enc": "XYZ"}) + ".AA.AA.AA.AA",
        b64json({"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"}) + ".AA.AA.AA.AA",
        b64json({"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "json"}) + ".AA.AA.AA.AA",
        b64json({"alg": "RSA-OAEP-256", "enc": "A256GCM"}) + ".A*.AA.AA.AA",
    ],
)
def test_jwe_garbage_is_invalid_request(token, enc_keys):
    with pytest.raises(SETValidationError) as info:
        jose.decrypt_set(token, [enc_keys["RSA-OAEP-256"][1]])
    assert info.value.code == c.ERR_INVALID_REQUEST


def test_jwe_tampered_ciphertext_fails(enc_keys, rsa_key):
    public, private = enc_keys["RSA-OAEP-256"]
    parts = jose.encrypt_set(sign(rsa_key, claims()), public).split(".")
    parts[3] = parts[3][:-2] + ("AA" if parts[3][-2:] != "AA" else "BB")
    with pytest.raises(SETValidationError) as info:
        jose.decrypt_set(".".join(parts), [private])
    assert info.value.code == c.ERR_INVALID_KEY


def _raw_jwe(plaintext: bytes, public: dict, header: dict) -> str:
    from jwcrypto import jwe as jj
    from jwcrypto import jwk as jk

    obj = jj.JWE(plaintext, protected=json.dumps(header))
    obj.add_recipient(jk.JWK(**public))
    return obj.serialize(compact=True)


def test_jwe_without_cty_accepted_only_for_a_jws(enc_keys, rsa_key):
    public, private = enc_keys["RSA-OAEP-256"]
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": public["kid"]}
    inner = sign(rsa_key, claims())
    assert jose.decrypt_set(_raw_jwe(inner.encode(), public, header), [private]) == inner
    for plaintext in (b'{"iss": "x"}', b"not.a.jws!", b"\xff\xfe"):
        with pytest.raises(SETValidationError) as info:
            jose.decrypt_set(_raw_jwe(plaintext, public, header), [private])
        assert info.value.code == c.ERR_INVALID_REQUEST
    lower = _raw_jwe(inner.encode(), public, {**header, "cty": "jwt"})
    assert jose.decrypt_set(lower, [private]) == inner


def test_validate_encryption_jwk(enc_keys):
    rsa_pub, rsa_priv = enc_keys["RSA-OAEP-256"]
    ec_pub, _ = enc_keys["ECDH-ES+A256KW"]
    jose.validate_encryption_jwk(rsa_pub)
    jose.validate_encryption_jwk(rsa_pub, "RSA-OAEP-256")
    jose.validate_encryption_jwk(ec_pub, "ECDH-ES+A256KW")
    no_alg = {k: v for k, v in ec_pub.items() if k not in ("alg", "use")}
    jose.validate_encryption_jwk(no_alg)
    jose.validate_encryption_jwk({**no_alg, "key_ops": ["deriveKey"]})
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    bad_cases = {
        "private": rsa_priv,
        "symmetric": {"kty": "oct", "k": "AAAA"},
        "wrong kty for alg": (ec_pub, "RSA-OAEP-256"),
        "alg mismatch": (rsa_pub, "ECDH-ES+A256KW"),
        "use sig": {**rsa_pub, "use": "sig"},
        "key_ops verify": {**rsa_pub, "key_ops": ["verify"]},
        "unsupported alg": (rsa_pub | {"alg": "RSA1_5"}, None),
        "small rsa": jose.public_jwk(small, kid="s", alg="RSA-OAEP-256", use="enc"),
        "bad curve": {**ec_pub, "crv": "secp256k1"},
        "broken": {"kty": "RSA", "n": "!!", "e": "AQAB"},
        "not a dict": "jwk",
        "okp": {"kty": "OKP", "crv": "X25519", "x": "AAAA"},
    }
    for name, case in bad_cases.items():
        jwk, alg = case if isinstance(case, tuple) else (case, None)
        with pytest.raises(SSFKeyError) as info:
            jose.validate_encryption_jwk(jwk, alg)
        assert str(info.value), name


def test_encrypt_set_refuses_bad_inputs(enc_keys):
    rsa_pub, rsa_priv = enc_keys["RSA-OAEP-256"]
    with pytest.raises(SSFKeyError):
        jose.encrypt_set("a.b.c", rsa_priv)
    with pytest.raises(SSFKeyError):
        jose.encrypt_set("a.b.c", rsa_pub, enc="A999GCM")
    with pytest.raises(SSFKeyError):
        jose.encrypt_set("a.b.c", enc_keys["ECDH-ES+A256KW"][0], alg="RSA-OAEP-256")


def test_decrypt_rejects_non_string():
    with pytest.raises(SETValidationError) as info:
        jose.decrypt_set(None, [])
    assert info.value.code == c.ERR_INVALID_REQUEST
