"""The 40 parameterised HTTP routes of the simulated Kaiku server.

Each route answers with one success status, at most one typical client error and one server error
status, so `kaiku_http_requests_total` stays at 90 label sets over any window: inside the
contract's cardinality budget of 100, as a well-behaved server would.
"""

from dataclasses import dataclass

SELECT, INSERT, UPDATE, DELETE = "SELECT", "INSERT", "UPDATE", "DELETE"
DB_OPERATIONS = (SELECT, INSERT, UPDATE, DELETE)


@dataclass(frozen=True)
class ClientError:
    status: int
    error_type: str
    ratio: float


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    domain: str | None
    weight: float
    db_operations: tuple[str, ...] = (SELECT,)
    success_status: int = 200
    median_seconds: float = 0.025
    client_error: ClientError | None = None
    server_error_status: int = 500

    @property
    def server_error_type(self) -> str:
        if self.domain in ("voice", "ws"):
            return self.domain
        return "db" if self.db_operations else "internal"


_UNAUTHORISED = ClientError(401, "auth", 0.04)
_FORBIDDEN = ClientError(403, "auth", 0.01)
_INVALID = ClientError(422, "validation", 0.02)

ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/v1/auth/login", "auth", 2, (SELECT, UPDATE), median_seconds=0.12,
          client_error=ClientError(401, "auth", 0.08)),
    Route("POST", "/api/v1/auth/refresh", "auth", 8, (SELECT, UPDATE), client_error=_UNAUTHORISED),
    Route("POST", "/api/v1/auth/logout", "auth", 1, (DELETE,), success_status=204),
    Route("GET", "/api/v1/users/@me", "auth", 10),
    Route("PATCH", "/api/v1/users/@me", "auth", 1, (UPDATE,), client_error=_INVALID),
    Route("GET", "/api/v1/users/{user_id}/profile", "chat", 4),
    Route("GET", "/api/v1/guilds", "chat", 6),
    Route("POST", "/api/v1/guilds", "chat", 0.3, (INSERT, INSERT), success_status=201,
          median_seconds=0.06, client_error=_INVALID),
    Route("GET", "/api/v1/guilds/{guild_id}", "chat", 5),
    Route("PATCH", "/api/v1/guilds/{guild_id}", "chat", 0.3, (UPDATE,)),
    Route("GET", "/api/v1/guilds/{guild_id}/channels", "chat", 8),
    Route("POST", "/api/v1/guilds/{guild_id}/channels", "chat", 0.3, (INSERT,), success_status=201),
    Route("GET", "/api/v1/guilds/{guild_id}/members", "chat", 4, median_seconds=0.04),
    Route("DELETE", "/api/v1/guilds/{guild_id}/members/{user_id}", "chat", 0.1, (DELETE,),
          success_status=204),
    Route("GET", "/api/v1/guilds/{guild_id}/invites", "chat", 0.3),
    Route("POST", "/api/v1/invites/{invite_code}/accept", "chat", 0.2, (SELECT, INSERT),
          client_error=ClientError(404, "validation", 0.05)),
    Route("GET", "/api/v1/channels/{channel_id}", "chat", 3),
    Route("GET", "/api/v1/channels/{channel_id}/messages", "chat", 14, (SELECT, SELECT),
          median_seconds=0.035),
    Route("POST", "/api/v1/channels/{channel_id}/messages", "chat", 8, (INSERT, UPDATE),
          success_status=201, median_seconds=0.03, client_error=ClientError(429, "ratelimit", 0.01)),
    Route("PATCH", "/api/v1/channels/{channel_id}/messages/{message_id}", "chat", 0.6, (UPDATE,)),
    Route("DELETE", "/api/v1/channels/{channel_id}/messages/{message_id}", "chat", 0.3, (DELETE,),
          success_status=204),
    Route("PUT", "/api/v1/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", "chat", 1.5,
          (INSERT,), success_status=204),
    Route("POST", "/api/v1/channels/{channel_id}/typing", "chat", 4, (), success_status=204,
          median_seconds=0.004),
    Route("GET", "/api/v1/channels/{channel_id}/pins", "chat", 0.5),
    Route("POST", "/api/v1/channels/{channel_id}/attachments", "chat", 0.8, (INSERT,),
          success_status=201, median_seconds=0.18, client_error=ClientError(413, "validation", 0.02)),
    Route("GET", "/api/v1/dms", "chat", 3),
    Route("POST", "/api/v1/dms", "chat", 0.2, (SELECT, INSERT), success_status=201),
    Route("GET", "/api/v1/search/messages", "chat", 1, (SELECT,), median_seconds=0.12),
    Route("POST", "/api/v1/voice/{channel_id}/join", "voice", 0.8, (SELECT, INSERT),
          median_seconds=0.05, client_error=_FORBIDDEN, server_error_status=503),
    Route("POST", "/api/v1/voice/{channel_id}/leave", "voice", 0.7, (UPDATE,), success_status=204,
          server_error_status=503),
    Route("GET", "/api/v1/voice/{channel_id}/participants", "voice", 1, (), median_seconds=0.008,
          server_error_status=503),
    Route("GET", "/api/v1/voice/regions", "voice", 0.3, (), median_seconds=0.005, server_error_status=503),
    Route("GET", "/api/v1/gateway", "ws", 1, (), median_seconds=0.003),
    Route("GET", "/ws/gateway", "ws", 1, (SELECT,), success_status=101, median_seconds=0.015),
    Route("GET", "/api/v1/keys/{user_id}/prekeys", "crypto", 1),
    Route("POST", "/api/v1/keys/prekeys", "crypto", 0.3, (INSERT,), success_status=201,
          client_error=_INVALID),
    Route("GET", "/api/v1/keys/devices", "crypto", 0.5),
    Route("GET", "/api/v1/admin/users", "admin", 0.1, (SELECT, SELECT), median_seconds=0.08),
    Route("POST", "/api/v1/admin/users/{user_id}/ban", "admin", 0.02, (UPDATE, INSERT),
          client_error=_FORBIDDEN),
    Route("GET", "/health", None, 2, (), median_seconds=0.002),
)
