/**
 * `terraform validate` on deploy/terraform, offline: `terraform init
 * -backend=false -plugin-dir=<local mirror>` then `validate`, in a copy of the
 * folder in a temp dir (so no .terraform or lock file lands in the repo).
 * Runs where terraform is on PATH and a local plugin mirror holds the AWS
 * provider (TRIBUTARY_TF_PLUGIN_DIR, or one of the usual mirror folders);
 * skipped, saying which is missing, elsewhere.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

const source = join(__dirname, '..', '..', 'deploy', 'terraform');
const AWS_PROVIDER = join('registry.terraform.io', 'hashicorp', 'aws');

const terraform = spawnSync('terraform', ['version'], { encoding: 'utf8' }).status === 0;
const mirror = [
  process.env.TRIBUTARY_TF_PLUGIN_DIR,
  '/opt/tf-plugins',
  join(homedir(), '.terraform.d', 'plugins'),
  join(homedir(), '.local', 'share', 'terraform', 'plugins'),
  '/usr/local/share/terraform/plugins',
  '/usr/share/terraform/plugins',
].find((d): d is string => d !== undefined && existsSync(join(d, AWS_PROVIDER)) && readdirSync(join(d, AWS_PROVIDER)).length > 0);

const missing = [terraform ? null : 'terraform is not on PATH', mirror ? null : `no local plugin mirror holds ${AWS_PROVIDER}`].filter(
  Boolean,
);
if (missing.length) console.warn(`Skipping terraform validate: ${missing.join('; ')} (set TRIBUTARY_TF_PLUGIN_DIR to a mirror).`);

(missing.length ? test.skip : test)(
  'deploy/terraform passes terraform validate with the AWS provider from the local mirror',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'trb-tf-'));
    try {
      cpSync(source, dir, { recursive: true, filter: (p) => !p.includes('.terraform') });
      // No CLI config: nothing is looked up online, only the mirror is used.
      const env = { ...process.env, TF_CLI_CONFIG_FILE: '/dev/null', TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
      const run = (args: string[]) => spawnSync('terraform', args, { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
      const init = run(['init', '-backend=false', `-plugin-dir=${mirror}`, '-input=false', '-no-color']);
      expect({ status: init.status, out: init.stderr }).toEqual({ status: 0, out: expect.any(String) });
      const validate = run(['validate', '-no-color']);
      expect(`${validate.stdout}${validate.stderr}`).toContain('Success! The configuration is valid.');
      expect(validate.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  240_000,
);
