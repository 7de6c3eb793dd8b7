//! Voice: calls and their state machine, the presence hub, and each call's media pipeline.
//! Today it holds the media pipeline ([`media`]); the call service and the WebSocket protocol
//! build on it (issue 4).

pub mod media;
