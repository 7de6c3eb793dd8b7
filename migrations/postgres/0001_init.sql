-- agentline schema, PostgreSQL flavour. Keep in lockstep with ../sqlite/0001_init.sql:
-- same tables, columns and indexes; only identity columns and blob types differ.
-- Times are unix milliseconds (INTEGER); flags are 0/1 integers (see docs/decisions).

CREATE TABLE subscriptions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet      TEXT    NOT NULL UNIQUE,
    number      TEXT    NOT NULL,
    plan        TEXT    NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('payment', 'comp')),
    payer       TEXT,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    released_at BIGINT
);

CREATE TABLE numbers (
    e164            TEXT    PRIMARY KEY,
    state           TEXT    NOT NULL CHECK (state IN ('free', 'reserved', 'assigned', 'quarantined')),
    subscription_id BIGINT  REFERENCES subscriptions (id),
    added_at        BIGINT  NOT NULL,
    released_at     BIGINT
);
CREATE INDEX numbers_by_state ON numbers (state, e164);

CREATE TABLE tokens (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id BIGINT  NOT NULL REFERENCES subscriptions (id),
    token_hash      BYTEA   NOT NULL UNIQUE,
    created_at      BIGINT  NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX tokens_by_subscription ON tokens (subscription_id);

CREATE TABLE messages (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   TEXT    NOT NULL,
    owner        BIGINT  NOT NULL,
    number       TEXT    NOT NULL,
    direction    TEXT    NOT NULL CHECK (direction IN ('sent', 'received')),
    peer         TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    status       TEXT,
    carrier_id   TEXT,
    segments     BIGINT  NOT NULL DEFAULT 1,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    error_code   BIGINT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    delivered_at BIGINT,
    received_at  BIGINT
);
CREATE INDEX messages_history ON messages (owner, created_at, id);
CREATE INDEX messages_unclaimed ON messages (owner, id) WHERE direction = 'received' AND delivered_at IS NULL;
CREATE INDEX messages_by_carrier_id ON messages (carrier_id) WHERE carrier_id IS NOT NULL;
CREATE INDEX messages_pending ON messages (status, id) WHERE status IN ('queued', 'sending');

CREATE TABLE waitlist (
    email         TEXT    PRIMARY KEY,
    registered_at BIGINT  NOT NULL
);

CREATE TABLE audit (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT  NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    detail TEXT    NOT NULL
);

-- One row per x402 payment we accepted for settlement. The unique key, not a lock, stops a
-- replay (also across nodes): a second copy of an authorization cannot insert.
CREATE TABLE payments (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    x402_version    BIGINT  NOT NULL,
    network         TEXT    NOT NULL,
    asset           TEXT    NOT NULL,
    payer           TEXT    NOT NULL,
    pay_to          TEXT    NOT NULL,
    amount          TEXT    NOT NULL,
    auth_nonce      TEXT    NOT NULL,
    valid_before    BIGINT  NOT NULL,
    signature       TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('settling', 'pending', 'committed', 'failed')),
    number          TEXT,
    renewal         BIGINT  NOT NULL DEFAULT 0,
    idempotency_key TEXT    UNIQUE,
    tx_hash         TEXT,
    error           TEXT,
    subscription_id BIGINT ,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (network, asset, payer, auth_nonce)
);
CREATE INDEX payments_unsettled ON payments (state, id) WHERE state IN ('settling', 'pending');

CREATE TABLE auth_nonces (
    nonce       TEXT    PRIMARY KEY,
    address     TEXT,
    expires_at  BIGINT  NOT NULL,
    consumed_at BIGINT 
);
