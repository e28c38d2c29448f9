-- Accounts, sessions, the live resets and retired links a password change checks, the
-- outbox a change queues its notice in, the audit trail, rate limits and counters.
-- Times are Unix seconds (limits: milliseconds), as in the records of the sled store.

CREATE TABLE users (
    id            text PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    stamp         text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    bigint NOT NULL
);

-- Keyed by the SHA-256 of the session token: a copy of the database hands out no sessions.
CREATE TABLE sessions (
    key        bytea PRIMARY KEY,
    user_id    text NOT NULL,
    stamp      text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- The one live reset of an account.
CREATE TABLE resets (
    user_id    text PRIMARY KEY,
    jti        text NOT NULL,
    kid        text NOT NULL,
    issued_at  bigint NOT NULL,
    expires_at bigint NOT NULL
);

-- Why a link no longer works ('used', 'replaced', 'burned'), until it would have expired.
CREATE TABLE retired (
    jti        text PRIMARY KEY,
    why        text NOT NULL,
    expires_at bigint NOT NULL
);

-- Queued mail. The message is sealed with the mail key, its id as associated data, so the
-- id is taken from the sequence before the row is written.
CREATE TABLE outbox (
    id              bigint PRIMARY KEY,
    kind            text NOT NULL,
    sender          text NOT NULL,
    recipient       text NOT NULL,
    sealed          text,
    created_at      bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    last_error      text,
    expires_at      bigint
);
CREATE SEQUENCE outbox_ids AS bigint;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id);

CREATE TABLE audit (
    id      bigserial PRIMARY KEY,
    at      bigint NOT NULL,
    kind    text NOT NULL,
    user_id text,
    client  text,
    detail  text NOT NULL
);

-- GCRA's one number per key: the theoretical arrival time, in milliseconds.
CREATE TABLE limits (
    key    text PRIMARY KEY,
    tat_ms bigint NOT NULL
);

CREATE TABLE counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
