/**
 * pino JSON lines on stderr (stdout carries only `--json` results and tables),
 * or to the UI's log file while the UI owns the terminal.
 */
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import type { Logger } from "@purger/core/host";

export function createLogger(options: { level?: string; destination?: string | number } = {}): Logger & pino.Logger {
  const level = options.level ?? process.env.PURGER_LOG_LEVEL ?? "info";
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}

export interface LogFile {
  /** Open for appending. */
  fd: number;
  /** Absolute path. */
  path: string;
  /** Why `.purger/purger.log` of the working directory was not used, when it was not. */
  refused: { path: string; reason: string } | null;
}

/**
 * `.purger/purger.log` under `cwd`, else a new private directory under the
 * temp directory (`mkdtemp`, checked to be ours and closed to others). The
 * file is opened without following a symbolic link and must be a plain file
 * of ours with no other name, so a planted link or hard link cannot make
 * purger append to someone else's file; it is made 0600, since log lines name
 * tables, keys and errors. Tests: test/secrets.test.tsx.
 */
export function openLogFile(cwd: string): LogFile {
  const preferred = join(cwd, ".purger", "purger.log");
  let reason: string;
  try {
    mkdirSync(join(cwd, ".purger"), { recursive: true });
    return { ...openOwnFile(preferred, 0), refused: null };
  } catch (error) {
    reason = messageOf(error);
  }
  const dir = mkdtempSync(join(tmpdir(), "purger-"));
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o077) !== 0) {
    throw new Error(`cannot open a log file: ${preferred}: ${reason}; and the new temporary directory ${dir} is not private to this user`);
  }
  // O_EXCL: in a directory just made, the file must be new.
  return { ...openOwnFile(join(dir, "purger.log"), constants.O_EXCL), refused: { path: preferred, reason } };
}

function openOwnFile(path: string, extraFlags: number): { fd: number; path: string } {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | extraFlags;
  let fd: number;
  try {
    fd = openSync(path, flags, 0o600);
  } catch (error) {
    if ((error as { code?: string }).code === "ELOOP") throw new Error("it is a symbolic link; purger does not write through one");
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error("it is not a regular file");
    if (stat.nlink !== 1) throw new Error(`it has ${stat.nlink} names (a hard link); purger does not write to a file that has other names`);
    const uid = process.getuid?.();
    if (uid !== undefined && stat.uid !== uid) throw new Error(`it belongs to user ${stat.uid}, not to this user (${uid})`);
    if ((stat.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    return { fd, path };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
