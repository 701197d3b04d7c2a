/**
 * `$VAR` and `${VAR:-default}` expansion of config text, as Sync Gateway 3.x applies it to the
 * start-up file and to database configs (`rest/config.go` expandEnv, Go's `os.Expand`): a name is
 * `${...}` up to the brace or a run of letters, digits and `_`; `$$` stays `$`; a variable that is
 * unset or empty without a default is an error naming it. Values are never echoed (secrets).
 */

export class EnvExpansionError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.length === 1 ? problems[0] : `${problems.length} errors:\n${problems.join('\n')}`);
    this.problems = problems;
  }
}

const SPECIAL = '*#$@!?-0123456789';
const isAlnum = (c: string) => /[A-Za-z0-9_]/.test(c);

/** Go's getShellName: the name after a `$` and how many characters it spans (0 name: not a reference). */
function shellName(s: string): [string, number] {
  if (s[0] === '{') {
    if (s.length > 2 && SPECIAL.includes(s[1]) && s[2] === '}') return [s[1], 3];
    for (let i = 1; i < s.length; i++) {
      if (s[i] === '}') return i === 1 ? ['', 2] : [s.slice(1, i), i + 1];
    }
    return ['', 1];
  }
  if (SPECIAL.includes(s[0])) return [s[0], 1];
  let i = 0;
  while (i < s.length && isAlnum(s[i])) i++;
  return [s.slice(0, i), i];
}

export function expandEnv(text: string, env: NodeJS.ProcessEnv = process.env): string {
  const problems: string[] = [];
  let out = '';
  let last = 0;
  for (let j = 0; j < text.length; j++) {
    if (text[j] !== '$' || j + 1 >= text.length) continue;
    out += text.slice(last, j);
    const [name, w] = shellName(text.slice(j + 1));
    if (name === '' && w === 0) out += '$';
    else if (name === '$') out += '$';
    else if (name !== '') {
      const sep = name.indexOf(':-');
      const key = sep >= 0 ? name.slice(0, sep) : name;
      const value = env[key] ?? '';
      if (value !== '') out += value;
      else if (sep >= 0) out += name.slice(sep + 2);
      else problems.push(`undefined environment variable '\${${key}}' is specified in the config without default value`);
    }
    j += w;
    last = j + 1;
  }
  out += text.slice(last);
  if (problems.length) throw new EnvExpansionError(problems);
  return out;
}
