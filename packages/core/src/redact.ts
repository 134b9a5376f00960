/**
 * A URL or connection string as it may be shown or logged. Every place of
 * core and the CLI that prints or logs one (doctor, `--json`, logs, the UI's
 * header, messages) goes through `redactUrl`, so a new secret-bearing form is
 * handled once, here.
 * Tests: test/redact.test.ts and the CLI's test/secrets.test.tsx.
 */

/**
 * Query parameters whose values are shown: those of libpq and node-postgres
 * that name a setting or a file path, never a secret. Any other parameter
 * (`password`, `sslpassword`, a webhook's `token`, `sig` …) is shown as `***`:
 * a name this list does not know is more likely a secret than not.
 */
const SHOWN_PARAMETERS = new Set([
  "application_name",
  "channel_binding",
  "client_encoding",
  "connect_timeout",
  "db",
  "dbname",
  "encoding",
  "fallback_application_name",
  "gssdelegation",
  "gssencmode",
  "gsslib",
  "host",
  "hostaddr",
  "idle_in_transaction_session_timeout",
  "keepalives",
  "keepalives_count",
  "keepalives_idle",
  "keepalives_interval",
  "krbsrvname",
  "load_balance_hosts",
  "lock_timeout",
  "options",
  "passfile",
  "port",
  "query_timeout",
  "replication",
  "requirepeer",
  "service",
  "ssl",
  "ssl_max_protocol_version",
  "ssl_min_protocol_version",
  "sslcert",
  "sslcompression",
  "sslcrl",
  "sslcrldir",
  "sslkey",
  "sslmode",
  "sslnegotiation",
  "sslrootcert",
  "sslsni",
  "statement_timeout",
  "target_session_attrs",
  "tcp_user_timeout",
  "uselibpqcompat",
  "user",
]);

const HIDDEN = "***";

/**
 * `url` with its secrets replaced by `***`: the password of the userinfo, the
 * value of every query parameter not known to be harmless, and the fragment.
 * Something that does not parse as a URL is not shown at all.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "(unparsable URL, not shown)";
  }
  // Nothing to hide: the URL as written (URL#toString would add a "/" to `http://host:port`).
  if (parsed.password === "" && parsed.search === "" && parsed.hash === "") return url;
  if (parsed.password !== "") parsed.password = HIDDEN;
  if (parsed.search !== "") parsed.search = redactQuery(parsed.search.slice(1));
  if (parsed.hash !== "") parsed.hash = HIDDEN;
  return parsed.toString();
}

/**
 * `text` (an error message, a log line) with `url` and each of its secrets
 * replaced the way `redactUrl` shows them, for messages of libraries and
 * servers that may repeat what they were given. Secrets shorter than 4
 * characters are left alone: replacing them would mangle ordinary words.
 */
export function redactSecretsIn(text: string, url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return text.replaceAll(url, redactUrl(url));
  }
  const secrets = new Set<string>();
  const add = (value: string) => {
    secrets.add(value);
    try {
      secrets.add(decodeURIComponent(value));
    } catch {
      // not percent-encoded
    }
  };
  if (parsed.password !== "") add(parsed.password);
  for (const pair of parsed.search.slice(1).split("&")) {
    const equals = pair.indexOf("=");
    const name = equals === -1 ? pair : pair.slice(0, equals);
    if (!SHOWN_PARAMETERS.has(decodeName(name).toLowerCase())) add(equals === -1 ? pair : pair.slice(equals + 1));
  }
  if (parsed.hash.length > 1) add(parsed.hash.slice(1));
  let redacted = text.replaceAll(url, redactUrl(url));
  for (const secret of [...secrets].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length)) {
    redacted = redacted.replaceAll(secret, HIDDEN);
  }
  return redacted;
}

function redactQuery(query: string): string {
  return query
    .split("&")
    .map((pair) => {
      if (pair === "") return pair;
      const equals = pair.indexOf("=");
      const name = equals === -1 ? pair : pair.slice(0, equals);
      if (!SHOWN_PARAMETERS.has(decodeName(name).toLowerCase())) return equals === -1 ? HIDDEN : `${name}=${HIDDEN}`;
      return pair;
    })
    .join("&");
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll("+", " "));
  } catch {
    return name;
  }
}
