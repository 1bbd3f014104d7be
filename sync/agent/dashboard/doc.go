// Package dashboard is the agent's web UI: plain html/template pages with
// embedded assets (embed.FS) and a little vanilla JavaScript, served on the
// agent's own listener at / and /ui/... (cmd/ferry mounts it beside the
// status API). Nothing is loaded from anywhere else; every read-only view
// renders without JavaScript, which only makes the pages live.
//
// # Views
//
//	GET  /ui/                  apps × targets matrix (?q=&target=&phase=&page=)
//	GET  /ui/apps/{app}        one app: targets, versions over time, the latest plan, errors
//	GET  /ui/targets           targets: reachable or not, and why
//	GET  /ui/fleet             fleet rollouts: waves, devices by state, rate, soak, abort reason
//	GET  /ui/fleet/devices     devices (?selector=k=v&state=&page=)
//	GET  /ui/history           rounds: commit, author, message, changes, step durations
//	GET  /ui/events            server-sent events from the agent's event bus
//
// A page asked with the header X-Ferry-Fragment: 1 renders only its main
// element, which the page's script fetches again on every event.
//
// # Auth
//
// The login form (GET/POST /ui/login) takes the operator token (the status
// API's bearer token) or the viewer token, compared in constant time, and
// sets an HttpOnly, SameSite=Strict session cookie (Secure over TLS)
// naming a random session id kept server-side until it expires. Without a
// session every page redirects to the login form (other requests get 401).
// Failed logins are rate-limited per client address. Actions are POST forms
// carrying the session's CSRF token and need the operator role; a viewer
// gets 403:
//
//	POST /ui/apps/{app}/rollback   (digest: optional; empty = the version before)
//	POST /ui/apps/{app}/unpin
//	POST /ui/sync
//	POST /ui/fleet/{target}/{app}/{pause|resume|abort}   (reason: optional)
//	POST /ui/logout
//
// The dashboard reads the agent through Source (an *agent.Agent) and a
// fleet hub through Fleet (HubFleet); it keeps no state but its sessions.
package dashboard
