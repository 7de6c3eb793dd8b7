-- Where a subscription's incoming calls go when not to a presence socket: the agent's own SIP
-- endpoint (`inbound_sip_uri`). Keyed by subscription, so a recycled number never carries its
-- previous owner's route.
CREATE TABLE voice_routes (
    subscription_id BIGINT PRIMARY KEY,
    inbound_sip_uri TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL
);
