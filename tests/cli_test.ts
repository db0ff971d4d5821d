import assert from "node:assert/strict";

async function cli(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    env: { PORT: "", DATABASE_URL: "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("`proplab --version` prints the version", async () => {
  const r = await cli(["--version"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
});

Deno.test("`proplab --help` prints usage", async () => {
  const r = await cli(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: proplab/);
});

Deno.test("an unknown command or flag prints usage and exits 2", async () => {
  for (const args of [["frobnicate"], ["--nope"], ["serve", "extra"]]) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /Usage: proplab/);
  }
});

Deno.test("bad configuration exits 1 with one line naming the variable", async () => {
  for (const [name, value] of [["PORT", "http"], ["DATABASE_URL", "::nope::"]]) {
    const r = await cli(["serve"], { [name]: value });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`configuration error: ${name} `));
  }
});

Deno.test("startup failures exit 1 with one line saying what to check", async () => {
  const down = await cli(["serve"], { DATABASE_URL: "postgres://nobody:pw@127.0.0.1:1/x" });
  assert.equal(down.code, 1, "an unreachable database is not a clean exit");
  assert.match(down.stderr, /^proplab: cannot reach the database: .*check DATABASE_URL/m);
  assert.ok(!down.stderr.includes("pw@"), "the URL's password is not echoed");

  const taken = Deno.listen({ port: 0, hostname: "127.0.0.1" });
  try {
    const port = String((taken.addr as Deno.NetAddr).port);
    const dir = await Deno.makeTempDir({ prefix: "proplab-cli-" });
    const busy = await cli(["serve"], { PORT: port, HOST: "127.0.0.1", DATA_DIR: dir });
    assert.equal(busy.code, 1);
    assert.equal(
      busy.stderr.trim(),
      `proplab: cannot listen on 127.0.0.1:${port}: the address is in use (set PORT)`,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], [], "it failed before creating the database");
    const nowhere = await cli(["serve"], { PORT: port, HOST: "not-a-host.invalid", DATA_DIR: dir });
    assert.equal(nowhere.code, 1);
    assert.match(
      nowhere.stderr,
      /^proplab: cannot listen on not-a-host\.invalid:\d+: .*check HOST/,
    );
    await Deno.remove(dir, { recursive: true });
  } finally {
    taken.close();
  }
});
