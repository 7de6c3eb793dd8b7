-- Voice calls. A call belongs to the subscription holding the number when it started (like
-- messages), so a number's next owner never sees the previous owner's calls. States:
-- initiated -> ringing -> in_progress -> completed, or busy / no_answer / failed / cancelled.
CREATE TABLE calls (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id     TEXT    NOT NULL UNIQUE,
    owner       BIGINT NOT NULL,
    number      TEXT    NOT NULL,
    direction   TEXT    NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    peer        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('initiated', 'ringing', 'in_progress', 'completed',
                                                  'busy', 'no_answer', 'failed', 'cancelled')),
    end_reason  TEXT,
    sip_code    BIGINT,
    created_at  BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at    BIGINT
);
CREATE INDEX calls_history ON calls (owner, created_at, id);
-- One active call per number, enforced by the database (also across nodes).
CREATE UNIQUE INDEX calls_one_active ON calls (number) WHERE state IN ('initiated', 'ringing', 'in_progress');
