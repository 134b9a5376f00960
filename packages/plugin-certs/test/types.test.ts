import type pg from "pg";
import { describe, expectTypeOf, it } from "vitest";
import certs, { defineRevoker, type CertsOptions, type RevokeRequest, type Revoker } from "../src/index.js";

describe("public types", () => {
  it("types a third party's revoker: its options and the request", () => {
    defineRevoker<{ mount: string }>(({ options, pool }) => {
      expectTypeOf(options.mount).toEqualTypeOf<string>();
      expectTypeOf(pool).toEqualTypeOf<pg.Pool>();
      return {
        async revoke(request) {
          expectTypeOf(request).toEqualTypeOf<RevokeRequest>();
          expectTypeOf(request.client).toEqualTypeOf<pg.ClientBase>();
        },
      };
    });
    // @ts-expect-error revoke must return a promise
    const wrong: Revoker = { revoke: () => true };
    void wrong;
  });

  it("types the options a describe() receives", () => {
    expectTypeOf(certs.describe!).parameter(0).toEqualTypeOf<CertsOptions>();
    expectTypeOf<CertsOptions["revoker"]>().toMatchTypeOf<{ table: unknown } | { webhook: unknown } | { module: string }>();
  });
});
