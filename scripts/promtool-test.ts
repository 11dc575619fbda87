/**
 * `make promtool-test`: promtool's unit tests of every alert of the chart's PrometheusRule.
 *
 * Renders `templates/prometheusrule.yaml` with `helm template` (release `rc` in `ripplecache-system`, the
 * chart's default thresholds), writes its `spec` (the rule groups) as a Prometheus rules file next to copies
 * of `test/promtool/*.test.yaml` (which name it `ripplecache-rules.yaml`), checks that every alert has a
 * case where it fires and one where it does not, and runs `promtool test rules` on them.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { kubeBinDir, repoRoot } from '../test/harness/tools.js';

const TESTS_DIR = join(repoRoot, 'test/promtool');
const RULES_FILE = 'ripplecache-rules.yaml';

interface RuleGroup {
  name: string;
  rules: Array<{ alert?: string; record?: string }>;
}

interface PromtoolTestFile {
  rule_files?: string[];
  tests?: Array<{
    alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] | null }>;
  }>;
}

/** Ends the run with a message and exit code 1 (after the temporary directory is removed). */
class PromtoolTestError extends Error {
  override readonly name = 'PromtoolTestError';
  readonly code = 'PromtoolTestFailed';
}

function fail(message: string): never {
  throw new PromtoolTestError(message);
}

/** The rule groups of the chart's PrometheusRule, rendered by helm. */
async function renderRuleGroups(): Promise<RuleGroup[]> {
  const helm = join(await kubeBinDir(), 'helm');
  const r = spawnSync(
    helm,
    [
      'template',
      'rc',
      join(repoRoot, 'charts/ripplecache'),
      '--namespace',
      'ripplecache-system',
      '--set',
      'metrics.prometheusRule.enabled=true',
      '--show-only',
      'templates/prometheusrule.yaml',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) fail(`helm template failed:\n${r.stderr}`);
  const docs = parseAllDocuments(r.stdout)
    .map((d) => d.toJSON() as { kind?: string; spec?: { groups?: RuleGroup[] } } | null)
    .filter((d) => d?.kind === 'PrometheusRule');
  const groups = docs[0]?.spec?.groups;
  if (docs.length !== 1 || groups === undefined) fail('expected one PrometheusRule with spec.groups');
  return groups;
}

/** Every alert must be tested firing (non-empty exp_alerts) and not firing (empty exp_alerts). */
function checkCoverage(alerts: string[], files: Map<string, PromtoolTestFile>): string[] {
  const firing = new Set<string>();
  const silent = new Set<string>();
  const problems: string[] = [];
  for (const [name, file] of files) {
    if (!(file.rule_files ?? []).includes(RULES_FILE)) problems.push(`${name}: rule_files must list ${RULES_FILE}`);
    for (const test of file.tests ?? []) {
      for (const c of test.alert_rule_test ?? []) {
        if (!alerts.includes(c.alertname)) problems.push(`${name}: tests an unknown alert ${c.alertname}`);
        ((c.exp_alerts ?? []).length > 0 ? firing : silent).add(c.alertname);
      }
    }
  }
  for (const alert of alerts) {
    if (!firing.has(alert)) problems.push(`${alert} has no test case where it fires`);
    if (!silent.has(alert)) problems.push(`${alert} has no test case where it does not fire`);
  }
  return problems;
}

async function main(): Promise<void> {
  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (promtool.status !== 0) fail('promtool is not installed (`make setup` installs the prometheus package)');

  const groups = await renderRuleGroups();
  const alerts = groups.flatMap((g) => g.rules.flatMap((r) => (r.alert === undefined ? [] : [r.alert])));
  const testFiles = readdirSync(TESTS_DIR)
    .filter((f) => f.endsWith('.test.yaml'))
    .sort();
  if (testFiles.length === 0) fail(`no *.test.yaml in ${TESTS_DIR}`);
  const parsed = new Map(
    testFiles.map((f) => [f, parse(readFileSync(join(TESTS_DIR, f), 'utf8')) as PromtoolTestFile] as const),
  );
  const problems = checkCoverage(alerts, parsed);
  if (problems.length > 0) fail(`incomplete alert tests:\n  ${problems.join('\n  ')}`);

  const dir = mkdtempSync(join(tmpdir(), 'ripplecache-promtool-'));
  try {
    writeFileSync(join(dir, RULES_FILE), stringify({ groups }, { lineWidth: 0 }));
    const check = spawnSync('promtool', ['check', 'rules', join(dir, RULES_FILE)], { stdio: 'inherit' });
    if (check.status !== 0) fail(`promtool check rules failed (exit code ${check.status})`);
    for (const f of testFiles) copyFileSync(join(TESTS_DIR, f), join(dir, f));
    const run = spawnSync('promtool', ['test', 'rules', ...testFiles], { cwd: dir, stdio: 'inherit' });
    if (run.status !== 0) fail(`promtool test rules failed (exit code ${run.status})`);
    process.stdout.write(`promtool-test: ${alerts.length} alerts, ${testFiles.length} test files: all passed\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (err) {
  if (!(err instanceof PromtoolTestError)) throw err;
  process.stderr.write(`promtool-test: ${err.message}\n`);
  process.exitCode = 1;
}
