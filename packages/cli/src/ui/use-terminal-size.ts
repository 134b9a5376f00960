/** The terminal's size, following resizes (Ink lays out again on `resize`). */
import { useEffect, useState } from "react";
import { useStdout } from "ink";

export interface TerminalSize {
  columns: number;
  /** undefined when unknown (not a terminal). */
  rows: number | undefined;
}

export function useTerminalSize(fixed?: Partial<TerminalSize>): TerminalSize {
  const { stdout } = useStdout();
  const read = (): TerminalSize => ({ columns: fixed?.columns ?? stdout.columns ?? 80, rows: fixed?.rows ?? stdout.rows });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => setSize(read());
    stdout.on("resize", onResize);
    return () => {
      stdout.off("resize", onResize);
    };
  }, [stdout, fixed?.columns, fixed?.rows]);
  return size;
}
