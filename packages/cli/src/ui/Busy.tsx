/* @jsxRuntime automatic */
/**
 * The spinner of the UI: @inkjs/ui's, with a slow frame (180 ms) — every
 * spinner tick is a React commit and an Ink layout, and the UI must not cost
 * the work its CPU (bench/p7-tui.ts).
 */
import { Spinner } from "@inkjs/ui";

export function Busy({ label }: { label?: string }) {
  return <Spinner type="squareCorners" {...(label !== undefined ? { label } : {})} />;
}
