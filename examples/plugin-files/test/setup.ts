// The testkit's global setup: an embedded PostgreSQL for the test run (or PURGER_TEST_PG_URL when set).
export { default } from "@purger/core/testing/setup";
