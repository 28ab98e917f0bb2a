"""The Microsoft identity platform endpoints the client uses: the OAuth 2.0 device
authorization grant (RFC 8628) and refresh-token grant, with expiring access tokens
and rotating refresh tokens.

Device codes stay pending until a test approves (or declines) them through the
control API. Polling faster than the interval answers slow_down and adds
slow_down_increment seconds to that code's interval, as RFC 8628 section 3.5 says.
Refresh tokens rotate on every refresh; by default a used one is refused with
invalid_grant (settings.refresh_token_reuse=True allows reuse, which is what the real
service documents). Tokens are opaque random strings, as Graph's personal tokens are.

Thread safety: every public method takes self.lock.
"""

import datetime
import secrets
import string
import threading
import time
import uuid

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
POLL_TOLERANCE_S = 0.05

ERROR_CODES = {
    "authorization_pending": (70016, "OAuth 2.0 device flow error. Authorization is pending. "
                              "Continue polling."),
    "slow_down": (70016, "The client is polling too frequently."),
    "authorization_declined": (70000, "The user denied the authorization request."),
    "expired_token": (70020, "The provided value for the input parameter 'device_code' "
                      "is not valid. This device code has expired."),
    "bad_verification_code": (70019, "Verification code expired or not recognised."),
    "invalid_grant": (70008, "The provided authorization code or refresh token has expired "
                      "or is not valid."),
    "invalid_request": (900144, "The request body must contain the parameter 'client_id'."),
    "invalid_client": (700025, "Client is public so neither 'client_assertion' nor "
                       "'client_secret' should be presented."),
    "unsupported_grant_type": (70003, "The app requested an unsupported grant type."),
}


class OAuthError(Exception):
    def __init__(self, error):
        super().__init__(error)
        self.error = error

    def body(self):
        code, text = ERROR_CODES[self.error]
        trace = str(uuid.uuid4())
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {trace}\r\nTimestamp: {now}",
            "error_codes": [code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": trace,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }


class DeviceCode:
    def __init__(self, client_id, scope, ttl, interval):
        self.device_code = "DAQABAAEAAAD" + secrets.token_urlsafe(48)
        self.user_code = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
        self.client_id = client_id
        self.scope = scope
        self.expires_at = time.monotonic() + ttl
        self.interval = interval
        self.last_poll = None
        self.state = "pending"  # pending | approved | declined | redeemed


class Auth:
    def __init__(self, settings):
        self.lock = threading.Lock()
        self.settings = settings
        self.device_codes = {}
        self.access_tokens = {}  # token -> expiry (monotonic)
        self.refresh_tokens = {}  # token -> {"scope":..., "used": bool}

    # ---- device code ----------------------------------------------------------------

    def start_device_flow(self, form, verification_uri):
        client_id = form.get("client_id")
        if not client_id:
            raise OAuthError("invalid_request")
        with self.lock:
            code = DeviceCode(client_id, form.get("scope", ""),
                              self.settings["device_code_ttl"],
                              self.settings["device_code_interval"])
            self.device_codes[code.device_code] = code
        return {
            "user_code": code.user_code,
            "device_code": code.device_code,
            "verification_uri": verification_uri,
            "expires_in": int(self.settings["device_code_ttl"]),
            "interval": int(code.interval),
            "message": f"To sign in, use a web browser to open the page {verification_uri} "
                       f"and enter the code {code.user_code} to authenticate.",
        }

    def _find(self, user_code):
        codes = [c for c in self.device_codes.values() if c.state == "pending"]
        if user_code is not None:
            codes = [c for c in self.device_codes.values() if c.user_code == user_code]
        if not codes:
            raise KeyError("no such device code")
        return codes[-1]

    def set_device_code_state(self, user_code, state):
        """Control API: approve/decline/expire the code (the latest pending one if None)."""
        with self.lock:
            code = self._find(user_code)
            if state == "expired":
                code.expires_at = time.monotonic() - 1
            else:
                code.state = state
            return code.user_code

    def token(self, form, force_slow_down=False):
        if form.get("client_secret") or form.get("client_assertion"):
            raise OAuthError("invalid_client")
        if not form.get("client_id"):
            raise OAuthError("invalid_request")
        grant = form.get("grant_type")
        if grant == DEVICE_CODE_GRANT:
            return self._redeem_device_code(form.get("device_code", ""), force_slow_down)
        if grant == "refresh_token":
            return self._refresh(form.get("refresh_token", ""), form.get("scope"))
        raise OAuthError("unsupported_grant_type")

    def _redeem_device_code(self, device_code, force_slow_down):
        with self.lock:
            code = self.device_codes.get(device_code)
            if code is None:
                raise OAuthError("bad_verification_code")
            now = time.monotonic()
            if code.state == "redeemed":
                raise OAuthError("invalid_grant")
            if now > code.expires_at:
                raise OAuthError("expired_token")
            if code.state == "declined":
                raise OAuthError("authorization_declined")
            too_soon = (code.last_poll is not None and
                        now - code.last_poll < code.interval - POLL_TOLERANCE_S)
            code.last_poll = now
            if force_slow_down or too_soon:
                code.interval += self.settings["slow_down_increment"]
                raise OAuthError("slow_down")
            if code.state == "pending":
                raise OAuthError("authorization_pending")
            code.state = "redeemed"
            return self._issue(code.scope)

    def _refresh(self, refresh_token, scope):
        with self.lock:
            record = self.refresh_tokens.get(refresh_token)
            if record is None or record["revoked"] or (
                    record["used"] and not self.settings["refresh_token_reuse"]):
                raise OAuthError("invalid_grant")
            record["used"] = True
            return self._issue(scope or record["scope"])

    def _issue(self, scope):
        ttl = self.settings["access_token_ttl"]
        access = "EwB" + secrets.token_urlsafe(64)
        self.access_tokens[access] = time.monotonic() + ttl
        reply = {"token_type": "Bearer", "scope": scope, "expires_in": int(ttl),
                 "ext_expires_in": int(ttl), "access_token": access}
        if "offline_access" in scope.split():
            refresh = "M.C" + secrets.token_urlsafe(96)
            self.refresh_tokens[refresh] = {"scope": scope, "used": False, "revoked": False}
            reply["refresh_token"] = refresh
        return reply

    def issue_directly(self, scope):
        """Control API: tokens without the device flow, for tests that skip login."""
        with self.lock:
            return self._issue(scope)

    # ---- checks and control ---------------------------------------------------------

    def access_token_state(self, authorization):
        """'valid', 'expired' or 'invalid' for an Authorization header value."""
        if not authorization:
            return "missing"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return "invalid"
        with self.lock:
            expiry = self.access_tokens.get(token.strip())
        if expiry is None:
            return "invalid"
        return "valid" if time.monotonic() < expiry else "expired"

    def expire_access_tokens(self):
        with self.lock:
            past = time.monotonic() - 1
            for token in self.access_tokens:
                self.access_tokens[token] = past

    def revoke_refresh_tokens(self):
        with self.lock:
            for record in self.refresh_tokens.values():
                record["revoked"] = True
