/**
 * The embedded database's directory, held by one process at a time and private to its
 * owner. PGlite is one process's database: a second server (or a CLI command) on the same
 * files would corrupt them or act on data the running server never sees. The hold is an
 * OS lock on `proplab.lock`, so it ends with the process, even after kill -9.
 */

/** Another process holds the data dir. */
export class DataDirInUse extends Error {
  override name = "DataDirInUse";
  constructor(dir: string, holder: string) {
    super(
      `the data dir ${dir} is in use by another proplab process${
        holder ? ` (pid ${holder})` : ""
      }` +
        "; stop it first, or point DATA_DIR elsewhere",
    );
  }
}

/** The data dir's lock file. */
export const LOCK_FILE = "proplab.lock";

/**
 * Creates `dir` if needed, makes it private (0700: it holds password hashes, signing keys and
 * their WAL), and locks it for this process. Throws DataDirInUse when another process has it.
 * Returns the release, for a clean close.
 */
export async function holdDataDir(dir: string): Promise<() => void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  if (Deno.build.os !== "windows") await Deno.chmod(dir, 0o700);
  const path = `${dir}/${LOCK_FILE}`;
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  if (!(await file.tryLock(true))) {
    file.close();
    const holder = await Deno.readTextFile(path).then((s) => s.trim(), () => "");
    throw new DataDirInUse(dir, holder);
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return () => {
    try {
      file.unlockSync();
      file.close();
    } catch { /* closed already */ }
  };
}
