import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chown, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import {
  progressLog,
  removeTempDir,
  spawnManaged,
  terminate,
  trackTempDir,
  waitForProcess,
  type ManagedProcess,
} from './tools.js';

/** A real PostgreSQL 15 server on a loopback port with its data in a temporary directory. */
export interface PostgresServer {
  /** postgres://ripplecache:<password>@127.0.0.1:<port>/ripplecache (password authentication over TCP). */
  readonly url: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** The temporary directory: data/, the socket directory sock/ and postgres.log. */
  readonly dir: string;
  /** Stops the server (fast shutdown) and removes the directory (kept with RIPPLECACHE_KEEP_TMP=1). */
  stop(): Promise<void>;
  /** Stops the server (fast shutdown: open connections are terminated) but keeps the data directory. */
  stopServer(): Promise<void>;
  /** Starts the server again on the same data directory and port; resolves once it accepts connections. */
  startServer(): Promise<void>;
}

export interface PostgresOptions {
  /** Default: postgresBinDir(). */
  binDir?: string;
  port?: number;
  /**
   * Keep PostgreSQL's default durability (fsync, synchronous commit, full-page writes), as an application
   * database runs in production. Default false: a throw-away test database with durability off for speed.
   */
  durable?: boolean;
  /**
   * Addresses to listen on besides 127.0.0.1, e.g. a local node's bridge address so that pods reach the
   * database (test/e2e-local). Never a wildcard: the test database must not be reachable from outside.
   */
  extraListenAddresses?: string[];
  /** CIDRs allowed to connect with password authentication besides loopback (pg_hba.conf `host` lines). */
  extraClientCidrs?: string[];
}

const DATABASE = 'ripplecache';
const USER = 'ripplecache';
const PASSWORD = 'ripplecache-test';

function run(file: string, args: string[], opts: { uid?: number; gid?: number; cwd: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...opts, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * `$RIPPLECACHE_PG_BIN`, else Debian's /usr/lib/postgresql/15/bin, else the newest major installed there
 * (scripts/ensure-tools.sh makes the same choice).
 */
export function postgresBinDir(): string {
  if (process.env.RIPPLECACHE_PG_BIN) return process.env.RIPPLECACHE_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(join(root, '15/bin/postgres'))) return join(root, '15/bin');
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .map(Number)
        .sort((a, b) => b - a)
    : [];
  return join(root, String(majors[0] ?? 15), 'bin');
}

/** The OS user to run PostgreSQL as: ourselves, or the `postgres` user when we are root (postgres refuses root). */
async function serverUser(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const line = (await run('getent', ['passwd', 'postgres'], { cwd: '/' })).trim();
  const [, , uid, gid] = line.split(':');
  if (!uid || !gid) throw new Error('running as root but there is no `postgres` OS user to run PostgreSQL as');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Starts PostgreSQL (initdb + postgres, no pg_ctl, so the server is our child and cannot outlive the test run)
 * on a free 127.0.0.1 port, then creates the `ripplecache` role (password auth) and database.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const log = progressLog('postgres');
  const bin = opts.binDir ?? postgresBinDir();
  if (!existsSync(join(bin, 'postgres'))) {
    throw new Error(`no PostgreSQL server binaries in ${bin}; run scripts/ensure-tools.sh (or set RIPPLECACHE_PG_BIN)`);
  }
  for (const a of opts.extraListenAddresses ?? [])
    if (a === '*' || a === '0.0.0.0' || a === '::' || a === '')
      throw new Error(`startPostgres: refusing to listen on the wildcard address ${JSON.stringify(a)}`);
  const listen = ['127.0.0.1', ...(opts.extraListenAddresses ?? [])].join(',');
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), `ripplecache-pg-${port}-`));
  trackTempDir(dir);
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  const logPath = join(dir, 'postgres.log');
  const who = await serverUser();
  const as = { ...who, cwd: dir };
  let server: ManagedProcess | undefined;

  const launch = async () => {
    const p = spawnManaged(
      'postgres',
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        sock,
        '-c',
        `listen_addresses=${listen}`,
        // A throw-away test database: durability off for speed, unless asked for.
        ...(opts.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
      ],
      { logPath, ...as },
    );
    server = p;
    await waitForProcess(
      p,
      `PostgreSQL on 127.0.0.1:${port}`,
      async () => {
        await run(join(bin, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)], as);
        return true;
      },
      60_000,
      100,
    );
  };
  const stopServer = async () => {
    // SIGINT = "fast" shutdown: roll back open transactions, terminate clients, checkpoint, exit.
    if (server) await terminate(server, 'SIGINT', 15_000);
  };

  try {
    if (who.uid !== undefined) await chown(dir, who.uid, who.gid ?? -1);
    await run('mkdir', ['-m', '0700', sock], as);
    const pwfile = join(dir, 'superuser.pw');
    await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o644 });
    log(`initdb in ${data}`);
    await run(
      join(bin, 'initdb'),
      [
        '-D',
        data,
        '-U',
        'postgres',
        '--pwfile',
        pwfile,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
      ],
      as,
    );
    if ((opts.extraClientCidrs ?? []).length > 0) {
      const lines = (opts.extraClientCidrs ?? []).map((c) => `host all all ${c} scram-sha-256\n`);
      await appendFile(join(data, 'pg_hba.conf'), lines.join(''));
    }
    log(`starting postgres on ${listen} port ${port}`);
    await launch();
    await run(
      join(bin, 'psql'),
      [
        '-h',
        sock,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-v',
        'ON_ERROR_STOP=1',
        '-q',
        '-c',
        `CREATE ROLE ${USER} LOGIN PASSWORD '${PASSWORD}'`,
        '-c',
        `CREATE DATABASE ${DATABASE} OWNER ${USER}`,
      ],
      as,
    );
    log(
      `ready: database ${DATABASE}, user ${USER} (running as ${who.uid === undefined ? userInfo().username : 'postgres'})`,
    );
  } catch (err) {
    await stopServer();
    removeTempDir(dir, 'postgres');
    throw err;
  }

  return {
    url: `postgres://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}/${DATABASE}`,
    port,
    database: DATABASE,
    user: USER,
    password: PASSWORD,
    dir,
    stopServer,
    startServer: async () => {
      if (server && !server.exited) return;
      await launch();
    },
    stop: async () => {
      await stopServer();
      removeTempDir(dir, 'postgres');
    },
  };
}
