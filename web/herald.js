/*
 * herald.js: a dependency-free browser client for herald's WebSocket routes
 * (plain ES2017, no build step). Served by herald at /herald.js.
 *
 *   const c = new Herald.Client('/ws/notifications/', {token: jwt});
 *   c.addEventListener('message', (e) => show(e.detail.data));
 *   c.addEventListener('recovered', (e) => console.log(e.detail));
 *   c.addEventListener('state', (e) => console.log(e.detail.state));
 *
 * new Herald.Client(url, options): connects at once. url is a ws:, wss:,
 * http:, https: URL or a path resolved against the page, or an array of
 * them tried in turn, one per reconnect attempt. Options (defaults):
 *   recover (true)    send `recover` (docs/PROTOCOL.md "Recovery across
 *                     reconnects"): `?recover=` on the first connect, then
 *                     `?recover=GROUP@EPOCH:OFFSET,...` from the last
 *                     positions seen, so that the server replays what was
 *                     missed. false: plain frames, no positions.
 *   token             a JWT, sent as ?token=
 *   minDelay (500), maxDelay (15000)  reconnect backoff in ms: attempt n
 *                     waits a uniform random time in [d/2, d], with
 *                     d = min(maxDelay, minDelay * 2^n) (jitter)
 *   stableAfter (5000) a connection open this long resets the backoff
 *   connectTimeout (10000) a handshake that takes longer is abandoned
 *   heartbeat (25000) after this long without a frame, send {"type":"ping"};
 *                     without an answer within another heartbeat, reconnect
 *                     (0: off)
 *   onmessage, onrecovered, onstate: listeners, as with addEventListener
 *
 * Events (CustomEvent, payload in e.detail):
 *   message    {data, group, epoch, offset, replayed}: one frame, unwrapped
 *              from its envelope; group, epoch, offset are undefined for
 *              plain frames (servers without recovery send no envelopes,
 *              and this client works with them too); replayed: true for a
 *              frame the server replayed from history after a reconnect
 *   recovered  {group, epoch, offset, recovered, missed, replayed, resumed}:
 *              the server's `recovered` frame; replayed lists the offsets
 *              that came before it on this connection; resumed is the
 *              position the client asked for (null: none)
 *   state      {state, attempt, delay, code, reason}: state is 'connecting',
 *              'connected', 'reconnecting' (delay: ms until the next
 *              attempt) or 'closed' (after close())
 * Methods: send(obj) -> bool; close(); positions() -> {group: {epoch,
 * offset}}; properties state and url (of the current connection).
 */
(function (root) {
	'use strict';

	var ENVELOPE_KEYS = ['type', 'group', 'epoch', 'offset', 'data'];
	var GROUP_RE = /^[A-Za-z0-9_.\-]{1,99}$/;
	var EPOCH_RE = /^[0-9a-f]{1,64}$/;
	var MAX_ITEMS = 16;
	var MAX_RECOVER = 2048;

	function isEnvelope(f) {
		if (!f || typeof f !== 'object' || f.type !== 'message' || !('data' in f)) return false;
		for (var k in f) if (ENVELOPE_KEYS.indexOf(k) < 0) return false;
		return true;
	}

	function isPosition(epoch, offset) {
		return typeof epoch === 'string' && EPOCH_RE.test(epoch) &&
			typeof offset === 'number' && offset >= 0 && Math.floor(offset) === offset;
	}

	/* A ws:/wss: URL for u (string), relative to the page where there is one. */
	function wsURL(u) {
		var base = root.location ? root.location.href : undefined;
		var x = new URL(u, base);
		if (x.protocol === 'http:') x.protocol = 'ws:';
		else if (x.protocol === 'https:') x.protocol = 'wss:';
		x.hash = '';
		return x.href;
	}

	class Client extends EventTarget {
		constructor(url, options) {
			super();
			var o = Object.assign({
				recover: true, token: null, minDelay: 500, maxDelay: 15000,
				stableAfter: 5000, connectTimeout: 10000, heartbeat: 25000
			}, options || {});
			this.options = o;
			this._urls = (Array.isArray(url) ? url : [url]).map(wsURL);
			if (this._urls.length === 0) throw new TypeError('herald: no URL');
			this._next = 0;
			this._pos = Object.create(null); /* group -> {epoch, offset} */
			this._ws = null;
			this._attempt = 0;
			this._timer = null;    /* reconnect or handshake timeout */
			this._hbTimer = null;  /* heartbeat */
			this._pinged = false;  /* a heartbeat ping waits for any frame */
			this._pongs = 0;       /* heartbeat pongs still to swallow */
			this._closed = false;
			this.state = 'idle';
			this.url = null;
			['message', 'recovered', 'state'].forEach((t) => {
				var f = o['on' + t];
				if (typeof f === 'function') this.addEventListener(t, f);
			});
			this._online = () => { if (this.state === 'reconnecting' && !this._ws) this._connect(); };
			if (root.addEventListener) root.addEventListener('online', this._online);
			this._connect();
		}

		positions() {
			var out = Object.create(null);
			for (var g in this._pos) out[g] = { epoch: this._pos[g].epoch, offset: this._pos[g].offset };
			return out;
		}

		send(obj) {
			if (!this._ws || this._ws.readyState !== 1) return false;
			this._ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
			return true;
		}

		close() {
			if (this._closed) return;
			this._closed = true;
			this._clearTimers();
			if (root.removeEventListener) root.removeEventListener('online', this._online);
			var ws = this._ws;
			this._ws = null;
			if (ws) {
				this._detach(ws);
				try { ws.close(1000); } catch (e) { /* already closing */ }
			}
			this._setState('closed', {});
		}

		/* The `recover` value: empty on a first connect, else the positions. */
		_recoverValue() {
			var items = [];
			var len = 0;
			for (var g in this._pos) {
				var p = this._pos[g];
				var it = g + '@' + p.epoch + ':' + p.offset;
				if (items.length >= MAX_ITEMS || len + it.length + 1 > MAX_RECOVER) break;
				items.push(it);
				len += it.length + 1;
			}
			return items.join(',');
		}

		_buildURL(u) {
			var q = [];
			if (this.options.recover) q.push('recover=' + this._recoverValue());
			if (this.options.token) q.push('token=' + encodeURIComponent(this.options.token));
			if (q.length === 0) return u;
			return u + (u.indexOf('?') >= 0 ? '&' : '?') + q.join('&');
		}

		_setState(state, extra) {
			this.state = state;
			this._emit('state', Object.assign({ state: state, attempt: this._attempt }, extra));
		}

		_emit(type, detail) {
			this.dispatchEvent(new CustomEvent(type, { detail: detail }));
		}

		_clearTimers() {
			clearTimeout(this._timer);
			clearTimeout(this._hbTimer);
			this._timer = this._hbTimer = null;
		}

		_detach(ws) {
			ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
		}

		_connect() {
			if (this._closed) return;
			this._clearTimers();
			var base = this._urls[this._next % this._urls.length];
			this._next++;
			var url = this._buildURL(base);
			var resumed = this.options.recover ? this.positions() : null;
			var ws;
			this.url = base;
			if (this.state !== 'reconnecting') this._setState('connecting', { url: base });
			try {
				ws = new WebSocket(url);
			} catch (e) {
				this._ws = null;
				this._schedule(0, String(e && e.message || e));
				return;
			}
			this._ws = ws;
			var opened = 0;
			var live = Object.create(null);     /* groups whose `recovered` frame arrived */
			var replayed = Object.create(null); /* group -> offsets replayed before it */
			this._timer = setTimeout(() => {
				if (this._ws === ws && ws.readyState === 0) {
					this._detach(ws);
					try { ws.close(); } catch (e) { /* ignore */ }
					this._ws = null;
					this._schedule(0, 'connect timeout');
				}
			}, this.options.connectTimeout);
			ws.onopen = () => {
				clearTimeout(this._timer);
				opened = Date.now();
				this._pinged = false;
				this._pongs = 0;
				this._armHeartbeat(ws);
				this._setState('connected', { url: base });
			};
			ws.onmessage = (ev) => {
				this._pinged = false;
				this._armHeartbeat(ws);
				this._frame(ev.data, live, replayed, resumed);
			};
			ws.onerror = () => { /* onclose follows and decides */ };
			ws.onclose = (ev) => {
				if (this._ws !== ws) return;
				this._ws = null;
				this._clearTimers();
				if (opened && Date.now() - opened >= this.options.stableAfter) this._attempt = 0;
				this._schedule(ev.code, ev.reason || '');
			};
		}

		_schedule(code, reason) {
			if (this._closed) return;
			var o = this.options;
			var d = Math.min(o.maxDelay, o.minDelay * Math.pow(2, Math.min(this._attempt, 30)));
			var delay = Math.round(d / 2 + Math.random() * d / 2);
			this._attempt++;
			this._setState('reconnecting', { delay: delay, code: code, reason: reason });
			this._timer = setTimeout(() => this._connect(), delay);
		}

		_armHeartbeat(ws) {
			var hb = this.options.heartbeat;
			clearTimeout(this._hbTimer);
			if (!hb) return;
			this._hbTimer = setTimeout(() => {
				if (this._ws !== ws) return;
				if (this._pinged) {
					/* a dead peer may never finish a close handshake: drop it now */
					this._detach(ws);
					try { ws.close(4000, 'heartbeat'); } catch (e) { /* ignore */ }
					this._ws = null;
					this._clearTimers();
					this._schedule(4000, 'no answer to a heartbeat');
					return;
				}
				this._pinged = true;
				if (this.send({ type: 'ping' })) this._pongs++;
				this._armHeartbeat(ws);
			}, hb);
		}

		_frame(text, live, replayed, resumed) {
			var f;
			try {
				f = JSON.parse(text);
			} catch (e) {
				this._emit('message', { data: text, replayed: false });
				return;
			}
			var rec = this.options.recover; /* without it, every frame is plain */
			if (rec && f && f.type === 'recovered' && typeof f.group === 'string') {
				var g = f.group;
				live[g] = true;
				if (GROUP_RE.test(g) && isPosition(f.epoch, f.offset))
					this._pos[g] = { epoch: f.epoch, offset: f.offset };
				this._emit('recovered', {
					group: g, epoch: f.epoch, offset: f.offset, recovered: f.recovered === true,
					missed: typeof f.missed === 'number' ? f.missed : 0,
					replayed: replayed[g] || [],
					resumed: resumed && resumed[g] ? resumed[g] : null
				});
				return;
			}
			if (f && f.type === 'pong' && this._pongs > 0) {
				this._pongs--; /* the answer to a heartbeat */
				return;
			}
			if (!rec || !isEnvelope(f)) {
				this._emit('message', { data: f, replayed: false });
				return;
			}
			var d = { data: f.data, group: f.group, epoch: f.epoch, offset: f.offset, replayed: false };
			if (typeof f.group === 'string' && isPosition(f.epoch, f.offset)) {
				var p = this._pos[f.group];
				if (p && p.epoch === f.epoch && f.offset <= p.offset) return; /* seen already */
				if (GROUP_RE.test(f.group)) this._pos[f.group] = { epoch: f.epoch, offset: f.offset };
				if (!live[f.group]) {
					d.replayed = true;
					(replayed[f.group] = replayed[f.group] || []).push(f.offset);
				}
			}
			this._emit('message', d);
		}
	}

	root.Herald = { Client: Client, version: '0.2' };
})(typeof self !== 'undefined' ? self : this);
