/** `redactUrl`: every secret-bearing form of a connection string or URL, as shown and logged. */
import { describe, expect, test } from "vitest";
import { redactSecretsIn, redactUrl } from "../src/host.js";

describe("redactUrl", () => {
  test("hides the userinfo password, secret query parameters and the fragment; keeps settings and file paths", () => {
    const shown = [
      "postgres://app:s3cret@db.internal:5432/auth",
      "postgres://app@db.internal/auth?password=s3cret",
      "postgresql://db.internal/auth?user=app&PassWord=s3cret&sslmode=verify-full",
      "postgres://app@db.internal/auth?sslmode=require&sslcert=/etc/pg/client.crt&sslkey=/etc/pg/client.key&sslpassword=k3y-pass",
      "postgres://app@db.internal/auth?application_name=purger&options=-c%20statement_timeout%3D5s&connect_timeout=10",
      "postgres://:s3cret@db.internal/auth",
      "socket:/var/run/postgresql?db=auth&password=s3cret",
      "postgres://app@db.internal/auth?pass%77ord=s3cret&s3cret-flag&token=abc#s3cret",
      "https://hooks.example/revoke?sig=s3cret&token=abc",
      "postgres://app:s3cret@db-1:5432,db-2:5432/auth",
      "host=db.internal password=s3cret",
    ].map(redactUrl);
    expect(shown.join("\n")).not.toMatch(/s3cret|k3y-pass|abc/);
    expect(shown).toMatchInlineSnapshot(`
      [
        "postgres://app:***@db.internal:5432/auth",
        "postgres://app@db.internal/auth?password=***",
        "postgresql://db.internal/auth?user=app&PassWord=***&sslmode=verify-full",
        "postgres://app@db.internal/auth?sslmode=require&sslcert=/etc/pg/client.crt&sslkey=/etc/pg/client.key&sslpassword=***",
        "postgres://app@db.internal/auth?application_name=purger&options=-c%20statement_timeout%3D5s&connect_timeout=10",
        "postgres://:***@db.internal/auth",
        "socket:/var/run/postgresql?db=auth&password=***",
        "postgres://app@db.internal/auth?pass%77ord=***&***&token=***#***",
        "https://hooks.example/revoke?sig=***&token=***",
        "(unparsable URL, not shown)",
        "(unparsable URL, not shown)",
      ]
    `);
  });
});

describe("redactSecretsIn", () => {
  test("replaces the URL and each of its secrets (encoded or not) in a message, and leaves short ones alone", () => {
    const url = "postgres://app:p%40ss-w0rd@db.internal/auth?sslpassword=k3y-pass&sslmode=require";
    const message = `could not connect to ${url}: password "p@ss-w0rd" refused (encoded p%40ss-w0rd), key k3y-pass, mode require`;
    expect(redactSecretsIn(message, url)).toMatchInlineSnapshot(
      `"could not connect to postgres://app:***@db.internal/auth?sslpassword=***&sslmode=require: password "***" refused (encoded ***), key ***, mode require"`,
    );
    expect(redactSecretsIn("role app refused", "postgres://app:ab@db/auth")).toBe("role app refused");
  });
});
