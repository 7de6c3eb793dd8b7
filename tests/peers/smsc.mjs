#!/usr/bin/env node
// An independent SMSC simulator for agentline's integration tests and benchmarks, built on the
// npm package `smpp` (node-smpp 0.5.1) for PDU framing. It binds 127.0.0.1 only.
//
//   node smsc.mjs [--port 0] [--control-port 0] [--system-id X --password Y] [--no-record]
//                 [--<switch> VALUE | --<switch>=VALUE | --<bool-switch> | --no-<bool-switch>]
//                 [--exit-on-stdin-close] [--verbose]
//     prints exactly one line {"smpp":PORT,"control":PORT} on stdout once both servers listen,
//     then serves until SIGTERM/SIGINT (exit 0). Everything else goes to stderr. Usage errors exit 1.
//
//   import { startSmsc } from "./smsc.mjs";
//   const smsc = await startSmsc({ port: 0, control_port: 0, throttle_every: 3 });
//   // -> { smppPort, controlPort, config, state (getter: snapshot as GET /state), injectMo(spec),
//   //      injectBurst(spec), setConfig(patch), reset(), waitFor(key, n, timeoutMs), drop(), close() }
//
// Control API (JSON in and out) on the control port; see README.md ("smsc.mjs").
//
// Raw bytes: node-smpp decodes short_message according to data_coding while it parses a PDU
// (lossily: its "ASCII" codec is really GSM 03.38, unknown bytes become spaces, ...). We hook
// PDU.prototype._filter and keep the raw short_message / message_payload octets (slices of the
// received PDU buffer) before that decode runs, and decode text with our own tables below.
// Outgoing deliver_sm always carries a Buffer short_message with an explicit data_coding, which
// node-smpp writes verbatim.
import http from "node:http";
import { EventEmitter } from "node:events";
import { fileURLToPath } from "node:url";
import { realpathSync } from "node:fs";
import smpp from "smpp";

const { PDU } = smpp;
const HOST = "127.0.0.1";
const SIM_SYSTEM_ID = "SIMSMSC";
const MAX_BODY = 1 << 20;
const RETRY_MS = 200;

// ---------------------------------------------------------------------------------------------
// Raw octets of received PDUs (before node-smpp's lossy decode).
const RAW_SM = Symbol.for("agentline.smsc.raw_short_message");
const RAW_MP = Symbol.for("agentline.smsc.raw_message_payload");
if (!PDU.prototype.__agentlineRawHook) {
  const origFilter = PDU.prototype._filter;
  PDU.prototype._filter = function (func) {
    if (func === "decode") {
      if (Buffer.isBuffer(this.short_message)) this[RAW_SM] = this.short_message;
      if (Buffer.isBuffer(this.message_payload)) this[RAW_MP] = this.message_payload;
    }
    return origFilter.call(this, func);
  };
  Object.defineProperty(PDU.prototype, "__agentlineRawHook", { value: true });
}

const STATUS = {
  OK: 0x00,
  INVCMDID: 0x03,
  INVBNDSTS: 0x04,
  ALYBND: 0x05,
  INVDSTADR: 0x0b,
  INVPASWD: 0x0e,
  INVSYSID: 0x0f,
  MSGQFUL: 0x14,
  THROTTLED: 0x58,
};

// ---------------------------------------------------------------------------------------------
// GSM 03.38 (unpacked septets), UCS-2, Latin-1, ASCII: our own code, independent of node-smpp.
const GSM_BASIC = [
  "@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å",
  "Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", "\x1b", "Æ", "æ", "ß", "É",
  " ", "!", '"', "#", "¤", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
  "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?",
  "¡", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
  "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "Ä", "Ö", "Ñ", "Ü", "§",
  "¿", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
  "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "ä", "ö", "ñ", "ü", "à",
];
if (GSM_BASIC.length !== 128) throw new Error("GSM table must have 128 entries");
const GSM_EXT = {
  0x0a: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2f: "\\",
  0x3c: "[", 0x3d: "~", 0x3e: "]", 0x40: "|", 0x65: "€",
};
const GSM_ENC = new Map();
GSM_BASIC.forEach((ch, i) => { if (i !== 0x1b) GSM_ENC.set(ch, [i]); });
for (const [code, ch] of Object.entries(GSM_EXT)) GSM_ENC.set(ch, [0x1b, Number(code)]);

function decodeGsm(buf) {
  let out = "";
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (b === 0x1b) {
      if (i + 1 >= buf.length) break; // dangling escape: nothing to show
      const n = buf[++i];
      // 3GPP TS 23.038: an escape code without an extension character shows the basic character.
      out += GSM_EXT[n] ?? (n < 0x80 && n !== 0x1b ? GSM_BASIC[n] : "\ufffd");
    } else {
      out += b < 0x80 ? GSM_BASIC[b] : "\ufffd";
    }
  }
  return out;
}
function encodeGsm(text) {
  const out = [];
  for (const ch of text) {
    const e = GSM_ENC.get(ch);
    if (!e) return null;
    out.push(...e);
  }
  return Buffer.from(out);
}
const isGsm = (text) => { for (const ch of text) if (!GSM_ENC.has(ch)) return false; return true; };

function decodeUcs2(buf) {
  let out = "";
  const n = buf.length - (buf.length % 2);
  for (let i = 0; i < n; i += 2) out += String.fromCharCode((buf[i] << 8) | buf[i + 1]);
  if (buf.length % 2) out += "\ufffd";
  return out; // UTF-16 code units: surrogate pairs join into astral characters by themselves
}
function encodeUcs2(text) {
  const b = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) b.writeUInt16BE(text.charCodeAt(i), i * 2);
  return b;
}
function decodeLatin1(buf) { return buf.toString("latin1"); }
function encodeLatin1(text) {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return null;
  return Buffer.from(text, "latin1");
}
function decodeAscii(buf) {
  let out = "";
  for (const b of buf) out += b < 0x80 ? String.fromCharCode(b) : "\ufffd";
  return out;
}
function decodeText(buf, dc) {
  switch (dc) {
    case 0: return decodeGsm(buf);
    case 1: return decodeAscii(buf);
    case 3: return decodeLatin1(buf);
    case 8: return decodeUcs2(buf);
    default: return null; // binary / unsupported: see short_message_hex
  }
}
function encodeText(text, dc) {
  switch (dc) {
    case 0: return encodeGsm(text);
    case 3: return encodeLatin1(text);
    case 8: return encodeUcs2(text);
    default: return null;
  }
}

// UDH: returns { udhLen (incl. UDHL octet), concat: {ref, total, seq, ref_bits} | null, hex }
function parseUdh(buf) {
  if (!buf.length) return null;
  const udhl = buf[0];
  const end = Math.min(1 + udhl, buf.length);
  let concat = null;
  let i = 1;
  while (i + 1 < end) {
    const iei = buf[i], len = buf[i + 1];
    const d = buf.subarray(i + 2, i + 2 + len);
    if (iei === 0x00 && len === 3 && d.length === 3) concat = { ref: d[0], total: d[1], seq: d[2], ref_bits: 8 };
    if (iei === 0x08 && len === 4 && d.length === 4) concat = { ref: (d[0] << 8) | d[1], total: d[2], seq: d[3], ref_bits: 16 };
    i += 2 + len;
  }
  return { udhLen: end, concat, hex: buf.subarray(0, end).toString("hex").toUpperCase() };
}

// ---------------------------------------------------------------------------------------------
const pad2 = (n) => String(n).padStart(2, "0");
function smppDate(d) { // YYMMDDhhmm, UTC
  return pad2(d.getUTCFullYear() % 100) + pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) + pad2(d.getUTCMinutes());
}
// Characters whose GSM 03.38 code equals their ASCII code, so that the receipt text reads the
// same whichever way the ESME decodes data_coding 0. Everything else becomes '?'.
const SAFE_RECEIPT_CHAR = /[A-Za-z0-9 !"#%&'()*+,\-./:;<=>?]/;
function receiptSnippet(text) {
  let out = "";
  for (const ch of Array.from(text ?? "").slice(0, 20)) out += SAFE_RECEIPT_CHAR.test(ch) ? ch : "?";
  return out;
}
const formatId = (n) => n.toString(16).toUpperCase().padStart(8, "0");
function receiptId(n, style) {
  if (style === "lower_nozero") return n.toString(16);
  if (style === "decimal") return n.toString(10);
  return formatId(n);
}
const addrTonNpi = (addr) => (/^\+?[0-9]+$/.test(addr) ? [1, 1] : [5, 0]);

// ---------------------------------------------------------------------------------------------
// Config
const DEFAULT_CONFIG = {
  system_id: null,
  password: null,
  dlr_first: false,
  dlr_tlv: true,
  dlr_id_style: "same",
  dlr_delay_ms: 20,
  dlr_redeliver: true,
  throttle_every: 0,
  queue_full_every: 0,
  fail_prefix: "",
  reject_prefix: "",
  no_resp_prefix: "",
  drop_after_submits: 0,
  mo_redeliver: true,
  record: true,
};
const BOOL_KEYS = new Set(["dlr_first", "dlr_tlv", "dlr_redeliver", "mo_redeliver", "record"]);
const INT_KEYS = new Set(["dlr_delay_ms", "throttle_every", "queue_full_every", "drop_after_submits"]);
const STR_KEYS = new Set(["fail_prefix", "reject_prefix", "no_resp_prefix"]);
const NULLABLE_STR_KEYS = new Set(["system_id", "password"]);
const ID_STYLES = new Set(["same", "lower_nozero", "decimal"]);

class BadRequest extends Error {}

function validateConfigPatch(patch, { coerce = false } = {}) {
  if (!patch || typeof patch !== "object" || Array.isArray(patch)) throw new BadRequest("config must be a JSON object");
  const out = {};
  for (let [k, v] of Object.entries(patch)) {
    if (BOOL_KEYS.has(k)) {
      if (coerce && typeof v === "string") {
        if (["true", "1", "yes", "on"].includes(v)) v = true;
        else if (["false", "0", "no", "off"].includes(v)) v = false;
      }
      if (typeof v !== "boolean") throw new BadRequest(`${k} must be a boolean`);
    } else if (INT_KEYS.has(k)) {
      if (coerce && typeof v === "string" && /^[0-9]+$/.test(v)) v = Number(v);
      if (!Number.isSafeInteger(v) || v < 0) throw new BadRequest(`${k} must be a non-negative integer`);
    } else if (STR_KEYS.has(k)) {
      if (v === null) v = "";
      if (typeof v !== "string") throw new BadRequest(`${k} must be a string`);
    } else if (NULLABLE_STR_KEYS.has(k)) {
      if (v === "") v = null;
      if (v !== null && typeof v !== "string") throw new BadRequest(`${k} must be a string or null`);
    } else if (k === "dlr_id_style") {
      if (!ID_STYLES.has(v)) throw new BadRequest(`dlr_id_style must be one of ${[...ID_STYLES].join(", ")}`);
    } else {
      throw new BadRequest(`unknown config key: ${k}`);
    }
    out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
export async function startSmsc(options = {}) {
  options = { ...options };
  const smppPortOpt = options.port ?? options.smpp_port ?? options.smppPort ?? 0;
  const controlPortOpt = options.control_port ?? options.controlPort ?? 0;
  const verbose = !!options.verbose;
  for (const k of ["port", "smpp_port", "smppPort", "control_port", "controlPort", "verbose"]) delete options[k];

  const config = { ...DEFAULT_CONFIG, ...validateConfigPatch(options, { coerce: true }) };
  const log = (...a) => { if (verbose) console.error("[smsc]", ...a); };

  // ---- state --------------------------------------------------------------------------------
  let epoch = 0; // bumped by reset(): timers and callbacks of older epochs are ignored
  let nextMsgId = 1; // never reset: message ids stay unique for the simulator's lifetime
  let nextMoId = 1;
  let nextSessionId = 1;
  let moRef8 = 0;
  let moRef16 = 0;
  let throttleCount = 0, queueFullCount = 0, dropCount = 0;

  const freshCounters = () => ({
    submits: 0, accepted: 0, throttled: 0, queue_full: 0, rejected: 0, no_response: 0, dropped: 0,
    not_bound: 0, messages: 0, receipts_sent: 0, receipts_acked: 0,
    mo_injected: 0, mo_sent: 0, mo_parts_acked: 0, mo_acked: 0,
  });
  let counters = freshCounters();
  let enquireLinks = 0, unbinds = 0;
  let binds = [], submits = [], messages = [], mos = [], receipts = [];
  let assembly = new Map(); // key -> { parts: Map(seq -> part), total, ... }

  const sessions = new Set(); // all connected
  let boundOrder = []; // bound sessions, oldest first
  const queue = new Set(); // deliveries waiting for a receiver-capable session

  const events = new EventEmitter();
  events.setMaxListeners(0);
  const waiters = new Set();
  const sessionsBound = () => boundOrder.length;
  const readValue = (key) => (key === "bound" ? sessionsBound() : counters[key]);
  function notify() {
    if (!waiters.size) return;
    for (const w of [...waiters]) if (readValue(w.key) >= w.n) w.done(true);
  }

  // ---- deliveries (MO parts and receipts): store and forward --------------------------------
  // item: { kind: "mo"|"dlr", epoch, opts, state, session, onResp(status), prefer }
  function pickReceiver(prefer) {
    if (prefer && prefer.bound && prefer.canReceive && !prefer.closed && !prefer.dropping) return prefer;
    for (let i = boundOrder.length - 1; i >= 0; i--) {
      const s = boundOrder[i];
      if (s.canReceive && !s.closed && !s.dropping) return s;
    }
    return null;
  }
  function redeliverEnabled(item) { return item.kind === "mo" ? config.mo_redeliver : config.dlr_redeliver; }
  function sendItem(item) {
    if (item.epoch !== epoch) return;
    const s = pickReceiver(item.prefer);
    if (!s) { item.state = "queued"; queue.add(item); return; }
    queue.delete(item);
    item.state = "inflight";
    item.session = s;
    s.inflight.add(item);
    const ok = s.smpp.deliver_sm(item.opts, (resp) => {
      s.inflight.delete(item);
      if (item.epoch !== epoch || item.state !== "inflight") return;
      const st = resp.command_status;
      item.onResp(st);
      if (st === 0) { item.state = "acked"; return; }
      if (redeliverEnabled(item)) {
        item.state = "retry_wait";
        setTimeout(() => { if (item.state === "retry_wait") sendItem(item); }, RETRY_MS);
      } else {
        item.state = "failed";
      }
    });
    if (!ok) { // socket no longer writable
      s.inflight.delete(item);
      item.state = "queued";
      queue.add(item);
      return;
    }
    item.onSent();
  }
  function flushQueue() {
    for (const item of [...queue]) {
      if (!pickReceiver(null)) break;
      sendItem(item);
    }
  }

  // ---- SMPP server ----------------------------------------------------------------------------
  const server = smpp.createServer({ debug: false }, (session) => {
    const sess = {
      id: nextSessionId++, smpp: session, socket: session.socket, bound: false, mode: null,
      canReceive: false, canTransmit: false, closed: false, inflight: new Set(), system_id: null,
    };
    sessions.add(sess);
    session.socket.setNoDelay(true); // no Nagle: small PDUs go out at once (latency tests)
    log(`session ${sess.id} connected`);
    session.on("error", (e) => {
      log(`session ${sess.id} error: ${e.message}`);
      session.socket.destroy(); // also covers node-smpp's stuck parser after a malformed PDU
    });
    session.on("close", () => onClose(sess));
    session.on("pdu", (pdu) => onPdu(sess, pdu));
  });

  function unbindSession(sess) {
    if (!sess.bound) return;
    sess.bound = false;
    boundOrder = boundOrder.filter((s) => s !== sess);
    notify();
  }
  function onClose(sess) {
    if (sess.closed) return;
    sess.closed = true;
    sessions.delete(sess);
    unbindSession(sess);
    log(`session ${sess.id} closed`);
    // Deliveries sent on this session but never answered: store and forward (or give up).
    for (const item of sess.inflight) {
      if (item.epoch !== epoch || item.state !== "inflight") continue;
      if (redeliverEnabled(item)) { item.state = "queued"; queue.add(item); } else item.state = "unanswered";
    }
    sess.inflight.clear();
    flushQueue(); // another bound session may take them
  }
  function destroySession(sess) {
    sess.socket.destroy();
    onClose(sess); // synchronously: nothing more is sent or handled on it
  }

  function respond(sess, pdu, opts) {
    if (sess.closed) return;
    sess.smpp.send(pdu.response(opts));
  }

  function onPdu(sess, pdu) {
    if (sess.closed) return;
    if (pdu.isResponse()) return; // responses reach their callbacks inside node-smpp
    switch (pdu.command) {
      case "bind_transceiver":
      case "bind_transmitter":
      case "bind_receiver":
        return onBind(sess, pdu);
      case "enquire_link":
        enquireLinks++;
        return respond(sess, pdu);
      case "unbind":
        unbinds++;
        unbindSession(sess);
        sess.smpp.send(pdu.response(), () => sess.socket.end());
        return;
      case "submit_sm":
        return onSubmit(sess, pdu);
      case "unknown":
        return sess.smpp.send(pdu.response()); // generic_nack, ESME_RINVCMDID
      default:
        return sess.smpp.send(new PDU("generic_nack", {
          command_status: STATUS.INVCMDID, sequence_number: pdu.sequence_number,
        }));
    }
  }

  function onBind(sess, pdu) {
    let status = STATUS.OK;
    if (sess.bound) status = STATUS.ALYBND;
    else if (config.system_id !== null && pdu.system_id !== config.system_id) status = STATUS.INVSYSID;
    else if (config.password !== null && pdu.password !== config.password) status = STATUS.INVPASWD;
    binds.push({
      session: sess.id, command: pdu.command, system_id: pdu.system_id, system_type: pdu.system_type,
      interface_version: pdu.interface_version, addr_ton: pdu.addr_ton, addr_npi: pdu.addr_npi,
      address_range: pdu.address_range, status, at_ms: Date.now(),
    });
    if (status !== STATUS.OK) {
      log(`session ${sess.id} ${pdu.command} refused: 0x${status.toString(16)}`);
      return respond(sess, pdu, { command_status: status });
    }
    const resp = { system_id: SIM_SYSTEM_ID };
    if (pdu.interface_version >= 0x34) resp.sc_interface_version = 0x34;
    respond(sess, pdu, resp);
    sess.bound = true;
    sess.mode = pdu.command.slice("bind_".length);
    sess.canReceive = sess.mode !== "transmitter";
    sess.canTransmit = sess.mode !== "receiver";
    sess.system_id = pdu.system_id;
    boundOrder.push(sess);
    log(`session ${sess.id} bound as ${sess.mode} (${pdu.system_id})`);
    notify();
    if (sess.canReceive) flushQueue();
  }

  function onSubmit(sess, pdu) {
    const ep = epoch;
    const now = Date.now();
    const rec = config.record;
    counters.submits++;
    const raw = pdu[RAW_SM] ?? Buffer.alloc(0);
    const payloadRaw = pdu[RAW_MP] ?? null;
    const esm = pdu.esm_class ?? 0;
    const dc = pdu.data_coding ?? 0;
    const dest = pdu.destination_addr ?? "";
    // Content: short_message, or message_payload when short_message is empty.
    const content = raw.length === 0 && payloadRaw ? payloadRaw : raw;
    let udh = null, body = content, concat = null;
    if (esm & 0x40) {
      const u = parseUdh(content);
      if (u) {
        body = content.subarray(u.udhLen);
        concat = u.concat;
        udh = { ...(u.concat ?? { ref: null, total: null, seq: null, ref_bits: null }), hex: u.hex };
      }
    }
    if (!concat && pdu.sar_msg_ref_num !== undefined && pdu.sar_total_segments !== undefined &&
        pdu.sar_segment_seqnum !== undefined) {
      concat = { ref: pdu.sar_msg_ref_num, total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum, ref_bits: 16, sar: true };
    }
    const text = rec ? decodeText(body, dc) : null;

    const record = rec ? {
      seq: pdu.sequence_number, session: sess.id,
      source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton, source_addr_npi: pdu.source_addr_npi,
      destination_addr: dest, dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi,
      esm_class: esm, data_coding: dc, registered_delivery: pdu.registered_delivery ?? 0,
      short_message_hex: raw.toString("hex").toUpperCase(),
      ...(payloadRaw ? { message_payload_hex: payloadRaw.toString("hex").toUpperCase() } : {}),
      udh, ...(concat && concat.sar ? { sar: { ref: concat.ref, total: concat.total, seq: concat.seq } } : {}),
      text, message_id: null, status: null, outcome: null, at_ms: now,
    } : null;
    if (rec) submits.push(record);
    const finish = (status, outcome, counterKey) => {
      if (record) { record.status = status; record.outcome = outcome; }
      counters[counterKey]++;
      notify();
    };

    if (!sess.bound || !sess.canTransmit) {
      finish(STATUS.INVBNDSTS, "not_bound", "not_bound");
      return respond(sess, pdu, { command_status: STATUS.INVBNDSTS });
    }
    throttleCount++; queueFullCount++; dropCount++;
    if (config.drop_after_submits > 0 && dropCount >= config.drop_after_submits) {
      config.drop_after_submits = 0; // one-shot
      finish("dropped", "dropped", "dropped");
      log(`session ${sess.id} dropped on submit seq ${pdu.sequence_number}`);
      return destroySession(sess);
    }
    if (config.throttle_every > 0 && throttleCount % config.throttle_every === 0) {
      finish(STATUS.THROTTLED, "throttled", "throttled");
      return respond(sess, pdu, { command_status: STATUS.THROTTLED });
    }
    if (config.queue_full_every > 0 && queueFullCount % config.queue_full_every === 0) {
      finish(STATUS.MSGQFUL, "queue_full", "queue_full");
      return respond(sess, pdu, { command_status: STATUS.MSGQFUL });
    }
    if (config.reject_prefix && dest.startsWith(config.reject_prefix)) {
      finish(STATUS.INVDSTADR, "rejected", "rejected");
      return respond(sess, pdu, { command_status: STATUS.INVDSTADR });
    }
    if (config.no_resp_prefix && dest.startsWith(config.no_resp_prefix)) {
      finish("no_response", "no_response", "no_response");
      return;
    }

    // Accepted.
    const n = nextMsgId++;
    const messageId = formatId(n);
    if (record) record.message_id = messageId;
    const failed = !!config.fail_prefix && dest.startsWith(config.fail_prefix);
    const rd = (pdu.registered_delivery ?? 0) & 0x03;
    const wantReceipt = rd === 1 || (rd === 2 && failed);
    const receipt = wantReceipt ? buildReceipt(sess, pdu, n, failed, now, decodeText(body, dc) ?? "") : null;

    if (receipt && config.dlr_first) sendItem(receipt);
    respond(sess, pdu, { message_id: messageId });
    if (record) { record.status = 0; record.outcome = "accepted"; }
    counters.accepted++;
    if (receipt && !config.dlr_first) {
      setTimeout(() => { if (ep === epoch) sendItem(receipt); }, config.dlr_delay_ms);
    }
    assemble(pdu.source_addr, dest, concat, body, dc, messageId, rec);
    notify();
  }

  function assemble(source, dest, concat, body, dc, messageId, rec) {
    if (!concat || !(concat.total > 1) || concat.seq < 1 || concat.seq > concat.total) {
      counters.messages++;
      if (rec) messages.push({
        source_addr: source, destination_addr: dest, text: decodeText(body, dc), parts: 1,
        data_coding: dc, message_ids: [messageId],
      });
      return;
    }
    const key = `${source}\u0000${dest}\u0000${concat.ref}\u0000${concat.total}`;
    let g = assembly.get(key);
    if (!g) {
      g = { source, dest, ref: concat.ref, total: concat.total, ref_bits: concat.ref_bits, sar: !!concat.sar, parts: new Map() };
      assembly.set(key, g);
    }
    g.parts.set(concat.seq, rec ? { body: Buffer.from(body), dc, messageId } : { dc, messageId });
    if (g.parts.size < g.total) return;
    assembly.delete(key);
    counters.messages++;
    if (!rec) return;
    const parts = [...g.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    const sameDc = parts.every((p) => p.dc === parts[0].dc);
    const text = sameDc
      ? decodeText(Buffer.concat(parts.map((p) => p.body)), parts[0].dc)
      : parts.map((p) => decodeText(p.body, p.dc) ?? "").join("");
    messages.push({
      source_addr: source, destination_addr: dest, text, parts: g.total,
      data_coding: sameDc ? parts[0].dc : null, message_ids: parts.map((p) => p.messageId),
      ref: g.ref, ref_bits: g.ref_bits, sar: g.sar,
    });
  }

  function buildReceipt(sess, pdu, n, failed, submitMs, text) {
    const rid = receiptId(n, config.dlr_id_style);
    const stamp = smppDate(new Date(submitMs));
    const doneStamp = smppDate(new Date(submitMs + config.dlr_delay_ms));
    const stat = failed ? "UNDELIV" : "DELIVRD";
    const body = `id:${rid} sub:001 dlvrd:${failed ? "000" : "001"} submit date:${stamp} done date:${doneStamp}` +
      ` stat:${stat} err:${failed ? "001" : "000"} text:${receiptSnippet(text)}`;
    const opts = {
      source_addr_ton: 1, source_addr_npi: 1, source_addr: pdu.destination_addr,
      dest_addr_ton: pdu.source_addr_ton ?? 0, dest_addr_npi: pdu.source_addr_npi ?? 0,
      destination_addr: pdu.source_addr, esm_class: 0x04, data_coding: 0,
      short_message: Buffer.from(body, "latin1"), // only GSM/ASCII-identical characters
    };
    if (config.dlr_tlv) { opts.receipted_message_id = rid; opts.message_state = failed ? 5 : 2; }
    const record = config.record ? {
      message_id: formatId(n), receipt_id: rid, source_addr: opts.source_addr, destination_addr: opts.destination_addr,
      stat, text: body, tlv: config.dlr_tlv, sends: 0, sent_at_ms: null, status: null, acked_at_ms: null,
    } : null;
    if (record) receipts.push(record);
    return {
      kind: "dlr", epoch, opts, state: "new", prefer: sess,
      onSent() {
        counters.receipts_sent++;
        if (record) { record.sends++; record.sent_at_ms ??= Date.now(); }
        notify();
      },
      onResp(st) {
        if (record) record.status = st;
        if (st === 0) {
          counters.receipts_acked++;
          if (record) record.acked_at_ms = Date.now();
          notify();
        }
      },
    };
  }

  // ---- MO injection ---------------------------------------------------------------------------
  function validateMo(spec) {
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new BadRequest("MO spec must be a JSON object");
    const known = new Set(["from", "to", "text", "data_coding", "parts", "udh16", "sar", "order"]);
    for (const k of Object.keys(spec)) if (!known.has(k)) throw new BadRequest(`unknown MO key: ${k}`);
    for (const k of ["from", "to"]) {
      if (typeof spec[k] !== "string" || !spec[k] || spec[k].length > 20) throw new BadRequest(`${k} must be a non-empty string (at most 20 characters)`);
    }
    if (typeof spec.text !== "string") throw new BadRequest("text must be a string");
    let dc = spec.data_coding;
    if (dc === undefined || dc === null) dc = isGsm(spec.text) ? 0 : 8;
    if (![0, 3, 8].includes(dc)) throw new BadRequest("data_coding must be 0, 3 or 8");
    const parts = spec.parts ?? 1;
    if (!Number.isInteger(parts) || parts < 1 || parts > 255) throw new BadRequest("parts must be an integer 1..255");
    for (const k of ["udh16", "sar"]) if (spec[k] !== undefined && typeof spec[k] !== "boolean") throw new BadRequest(`${k} must be a boolean`);
    if (spec.udh16 && spec.sar) throw new BadRequest("udh16 and sar are exclusive");
    const order = spec.order ?? "normal";
    if (!["normal", "reverse"].includes(order)) throw new BadRequest('order must be "normal" or "reverse"');
    const chars = Array.from(spec.text);
    if (parts > 1 && chars.length < parts) throw new BadRequest(`text has fewer characters (${chars.length}) than parts (${parts})`);
    // Split on whole characters (never inside a surrogate pair or a GSM escape), as evenly as
    // possible: the first (length % parts) parts get one character more.
    const base = Math.floor(chars.length / parts), extra = chars.length % parts;
    const chunks = [];
    for (let i = 0, at = 0; i < parts; i++) {
      const len = base + (i < extra ? 1 : 0);
      chunks.push(chars.slice(at, at + len).join(""));
      at += len;
    }
    const udhLen = parts > 1 && !spec.sar ? (spec.udh16 ? 7 : 6) : 0;
    const bodies = chunks.map((c) => {
      const b = encodeText(c, dc);
      if (!b) throw new BadRequest(`text cannot be encoded with data_coding ${dc}`);
      if (b.length + udhLen > 254) throw new BadRequest(`a part would be ${b.length + udhLen} octets (max 254): use more parts`);
      return b;
    });
    return { from: spec.from, to: spec.to, text: spec.text, dc, parts, udh16: !!spec.udh16, sar: !!spec.sar, order, bodies };
  }

  // onAcked: called once, when every part of this MO is acknowledged.
  function injectValidated(v, onAcked = null) {
    const id = nextMoId++;
    const rec = config.record;
    const mo = {
      id, from: v.from, to: v.to, text: v.text, data_coding: v.dc, parts: v.parts,
      encoding: v.parts > 1 ? (v.sar ? "sar" : v.udh16 ? "udh16" : "udh8") : "single", order: v.order,
      ref: null, acked_parts: 0, statuses: new Array(v.parts).fill(null), sends: 0,
      first_sent_at_ms: null, acked_at_ms: null,
    };
    if (v.parts > 1) mo.ref = v.sar || v.udh16 ? (moRef16 = (moRef16 % 0xffff) + 1) : (moRef8 = (moRef8 + 1) % 256);
    if (rec) mos.push(mo);
    counters.mo_injected++;
    const [sTon, sNpi] = addrTonNpi(v.from);
    const [dTon, dNpi] = addrTonNpi(v.to);
    const items = v.bodies.map((body, i) => {
      const seq = i + 1;
      const opts = {
        source_addr_ton: sTon, source_addr_npi: sNpi, source_addr: v.from,
        dest_addr_ton: dTon, dest_addr_npi: dNpi, destination_addr: v.to,
        esm_class: 0, data_coding: v.dc, short_message: body,
      };
      if (v.parts > 1) {
        if (v.sar) {
          opts.sar_msg_ref_num = mo.ref; opts.sar_total_segments = v.parts; opts.sar_segment_seqnum = seq;
        } else {
          const udh = v.udh16
            ? Buffer.from([0x06, 0x08, 0x04, mo.ref >> 8, mo.ref & 0xff, v.parts, seq])
            : Buffer.from([0x05, 0x00, 0x03, mo.ref, v.parts, seq]);
          opts.esm_class = 0x40;
          opts.short_message = Buffer.concat([udh, body]);
        }
      }
      return {
        kind: "mo", epoch, opts, state: "new", prefer: null,
        onSent() {
          counters.mo_sent++;
          mo.sends++;
          mo.first_sent_at_ms ??= Date.now();
          notify();
        },
        onResp(st) {
          mo.statuses[i] = st;
          if (st !== 0) return;
          mo.acked_parts++;
          counters.mo_parts_acked++;
          if (mo.acked_parts === mo.parts) { mo.acked_at_ms = Date.now(); counters.mo_acked++; onAcked?.(); }
          notify();
        },
      };
    });
    const ordered = v.order === "reverse" ? [...items].reverse() : items;
    for (const it of ordered) sendItem(it);
    return id;
  }

  function injectMo(spec) { return injectValidated(validateMo(spec)); }

  // Without a window every MO is sent at once; with one, at most `window` are unacknowledged at a
  // time and the next goes out when one is acknowledged (ids then lists only the first window).
  function injectBurst(spec) {
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new BadRequest("burst spec must be a JSON object");
    const { count, from, to, prefix = "", window = null } = spec;
    for (const k of Object.keys(spec)) if (!["count", "from", "to", "prefix", "window"].includes(k)) throw new BadRequest(`unknown burst key: ${k}`);
    if (!Number.isSafeInteger(count) || count < 0 || count > 1_000_000) throw new BadRequest("count must be an integer 0..1000000");
    if (typeof prefix !== "string") throw new BadRequest("prefix must be a string");
    if (window !== null && !(Number.isSafeInteger(window) && window > 0)) throw new BadRequest("window must be a positive integer");
    validateMo({ from, to, text: `${prefix}0` }); // address checks
    const ids = [];
    if (window === null) {
      for (let i = 0; i < count; i++) ids.push(injectValidated(validateMo({ from, to, text: `${prefix}${i}` })));
      return ids;
    }
    const ep = epoch;
    let next = 0;
    const sendNext = () => {
      if (next >= count || ep !== epoch) return null;
      const i = next++;
      return injectValidated(validateMo({ from, to, text: `${prefix}${i}` }), sendNext);
    };
    for (let w = 0; w < Math.min(window, count); w++) ids.push(sendNext());
    return ids;
  }

  // ---- control operations -------------------------------------------------------------------
  function setConfig(patch) {
    const v = validateConfigPatch(patch);
    Object.assign(config, v);
    if ("throttle_every" in v) throttleCount = 0;
    if ("queue_full_every" in v) queueFullCount = 0;
    if ("drop_after_submits" in v) dropCount = 0;
    return { ...config };
  }
  function reset() {
    epoch++;
    counters = freshCounters();
    enquireLinks = 0; unbinds = 0;
    binds = []; submits = []; messages = []; mos = []; receipts = [];
    assembly = new Map();
    queue.clear();
    throttleCount = 0; queueFullCount = 0;
    notify();
  }
  function drop() {
    const all = [...sessions];
    for (const s of all) s.dropping = true; // no re-queued delivery may move to a doomed session
    for (const s of all) destroySession(s);
    return all.length;
  }
  function snapshot() {
    return {
      binds, sessions: sessionsBound(), connections: sessions.size, enquire_links: enquireLinks, unbinds,
      submits, messages, mo: mos, receipts,
      incomplete: [...assembly.values()].map((g) => ({
        source_addr: g.source, destination_addr: g.dest, ref: g.ref, total: g.total, received: [...g.parts.keys()].sort((a, b) => a - b),
      })),
      queued: queue.size,
      counters: { ...counters },
      config: { ...config },
    };
  }
  const WAIT_KEYS = () => new Set(["bound", ...Object.keys(counters)]);
  function waitFor(key, n, timeoutMs) {
    return new Promise((resolve) => {
      const w = {
        key, n,
        done(ok) {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          clearTimeout(w.timer);
          resolve({ ok, key, value: readValue(key), target: n });
        },
      };
      waiters.add(w);
      w.timer = setTimeout(() => w.done(false), timeoutMs);
      notify();
    });
  }

  // ---- control HTTP -------------------------------------------------------------------------
  function sendJson(res, status, body) {
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
    res.end(data);
  }
  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let len = 0;
      req.on("data", (c) => {
        len += c.length;
        if (len > MAX_BODY) { reject(new BadRequest("body too large")); req.destroy(); return; }
        chunks.push(c);
      });
      req.on("end", () => {
        const s = Buffer.concat(chunks).toString("utf8").trim();
        if (!s) return resolve(undefined);
        try { resolve(JSON.parse(s)); } catch { reject(new BadRequest("body is not valid JSON")); }
      });
      req.on("error", reject);
    });
  }
  const control = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case "GET /state":
          return sendJson(res, 200, snapshot());
        case "GET /config":
          return sendJson(res, 200, { ...config });
        case "POST /config":
          return sendJson(res, 200, setConfig((await readBody(req)) ?? {}));
        case "POST /mo":
          return sendJson(res, 200, { id: injectMo(await readBody(req)) });
        case "POST /mo-burst":
          return sendJson(res, 200, { ids: injectBurst(await readBody(req)) });
        case "POST /drop":
          await readBody(req);
          return sendJson(res, 200, { dropped: drop() });
        case "POST /reset":
          await readBody(req);
          reset();
          return sendJson(res, 200, { ok: true });
        case "GET /wait": {
          const keys = [...url.searchParams.keys()].filter((k) => k !== "timeout_ms");
          if (keys.length !== 1) throw new BadRequest(`exactly one condition is required, one of: ${[...WAIT_KEYS()].join(", ")}`);
          const key = keys[0];
          if (!WAIT_KEYS().has(key)) throw new BadRequest(`unknown wait key: ${key}`);
          const nStr = url.searchParams.get(key);
          const tStr = url.searchParams.get("timeout_ms") ?? "10000";
          if (!/^[0-9]+$/.test(nStr)) throw new BadRequest(`${key} must be a non-negative integer`);
          if (!/^[0-9]+$/.test(tStr) || Number(tStr) > 600000) throw new BadRequest("timeout_ms must be an integer 0..600000");
          const r = await waitFor(key, Number(nStr), Number(tStr));
          return sendJson(res, r.ok ? 200 : 408, r.ok ? r : { error: `timeout waiting for ${key} >= ${r.target}`, ...r });
        }
        default: {
          const known = ["/state", "/config", "/mo", "/mo-burst", "/drop", "/reset", "/wait"];
          if (known.includes(url.pathname)) return sendJson(res, 405, { error: `method ${req.method} not allowed on ${url.pathname}` });
          return sendJson(res, 404, { error: `no route ${req.method} ${url.pathname}` });
        }
      }
    } catch (e) {
      if (e instanceof BadRequest) return sendJson(res, 400, { error: e.message });
      console.error("[smsc] control error:", e);
      return sendJson(res, 500, { error: String(e?.message ?? e) });
    }
  });

  // ---- listen -------------------------------------------------------------------------------
  const listen = (srv, port) => new Promise((resolve, reject) => {
    const onErr = (e) => reject(e);
    srv.once("error", onErr);
    srv.listen(port, HOST, () => { srv.off("error", onErr); resolve(srv.address().port); });
  });
  const smppPort = await listen(server, smppPortOpt);
  let controlPort;
  try {
    controlPort = await listen(control, controlPortOpt);
  } catch (e) {
    server.close();
    throw e;
  }
  server.on("error", (e) => console.error("[smsc] smpp server error:", e.message));
  control.on("error", (e) => console.error("[smsc] control server error:", e.message));

  let closed = false;
  async function close() {
    if (closed) return;
    closed = true;
    epoch++;
    queue.clear();
    for (const w of [...waiters]) w.done(false);
    drop();
    control.closeAllConnections?.();
    await Promise.all([
      new Promise((r) => server.close(() => r())),
      new Promise((r) => control.close(() => r())),
    ]);
  }

  return {
    smppPort, controlPort, config,
    get state() { return snapshot(); },
    injectMo, injectBurst, setConfig, reset, waitFor, drop, close,
  };
}

// ---------------------------------------------------------------------------------------------
// CLI
function parseCli(argv) {
  const opts = {};
  const flags = { exitOnStdinClose: false };
  const bools = new Set([...BOOL_KEYS, "verbose"]);
  const norm = (s) => s.replace(/-/g, "_");
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${JSON.stringify(a)}`);
    let name = a.slice(2), value;
    const eq = name.indexOf("=");
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    name = norm(name);
    if (name === "exit_on_stdin_close") { flags.exitOnStdinClose = true; continue; }
    if (name === "smpp_port") name = "port";
    if (value === undefined && name.startsWith("no_") && bools.has(name.slice(3))) { opts[name.slice(3)] = false; continue; }
    if (bools.has(name)) { opts[name] = value === undefined ? true : value; continue; }
    if (!(name in DEFAULT_CONFIG) && name !== "port" && name !== "control_port") throw new Error(`unknown option --${name.replace(/_/g, "-")}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      value = argv[++i];
    }
    opts[name] = value;
  }
  for (const k of ["port", "control_port"]) {
    if (opts[k] === undefined) continue;
    const p = Number(opts[k]);
    if (!/^[0-9]+$/.test(String(opts[k])) || p > 65535) throw new Error(`--${k.replace(/_/g, "-")} must be 0..65535`);
    opts[k] = p;
  }
  if (opts.verbose !== undefined) opts.verbose = opts.verbose === true || opts.verbose === "true";
  return { opts, flags };
}

async function main() {
  let parsed;
  try {
    parsed = parseCli(process.argv.slice(2));
    validateConfigPatch(Object.fromEntries(Object.entries(parsed.opts).filter(([k]) => k in DEFAULT_CONFIG)), { coerce: true });
  } catch (e) {
    console.error(`smsc.mjs: ${e.message}`);
    process.exit(1);
  }
  let smsc;
  try {
    smsc = await startSmsc(parsed.opts);
  } catch (e) {
    console.error(`smsc.mjs: startup failed: ${e.message}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async (why) => {
    if (stopping) return;
    stopping = true;
    console.error(`smsc.mjs: stopping (${why})`);
    const t = setTimeout(() => process.exit(0), 2000);
    t.unref();
    await smsc.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (parsed.flags.exitOnStdinClose) {
    process.stdin.on("end", () => stop("stdin closed"));
    process.stdin.on("error", () => stop("stdin error"));
    process.stdin.resume();
  }
  process.stdout.write(JSON.stringify({ smpp: smsc.smppPort, control: smsc.controlPort }) + "\n");
  console.error(`smsc.mjs: SMPP on ${HOST}:${smsc.smppPort}, control on http://${HOST}:${smsc.controlPort}`);
}

const isMain = (() => {
  try { return realpathSync(process.argv[1] ?? "") === realpathSync(fileURLToPath(import.meta.url)); } catch { return false; }
})();
if (isMain) main();
