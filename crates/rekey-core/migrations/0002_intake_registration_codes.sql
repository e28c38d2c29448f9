-- Requests waiting for the worker, accounts waiting for their address to be verified, and
-- the typed codes of resets and registrations.

-- The request as JSON (for a registration it carries the chosen password's argon2id hash,
-- as the sled store's record does). A worker claims rows until `claimed_until`; another
-- takes them once that has passed.
CREATE TABLE intake (
    id            bigserial PRIMARY KEY,
    record        text NOT NULL,
    claimed_until bigint NOT NULL DEFAULT 0
);

CREATE TABLE pending (
    id            text PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    stamp         text NOT NULL,
    jti           text NOT NULL,
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL
);

-- Keyed `reset/<address>` or `verify/<address>`; the code's HMAC, never the code.
CREATE TABLE codes (
    key        text PRIMARY KEY,
    failures   integer NOT NULL,
    until      bigint NOT NULL,
    user_id    text NOT NULL,
    kid        text NOT NULL,
    jti        text NOT NULL,
    code_mac   text NOT NULL,
    expires_at bigint NOT NULL
);
