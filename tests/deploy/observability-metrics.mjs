// The metric names the observability files use, against what the server really exports.
//
//   node observability-metrics.mjs names <alerts.yml> <dashboard.json>
//       prints every voice_broker_* name used (one a line)
//   node observability-metrics.mjs queries <dashboard.json> <out-rules.yml>
//       writes each dashboard query as a recording rule (Grafana's variables replaced), so that
//       `promtool check rules` parses every one of them
//   node observability-metrics.mjs compare <metrics.txt> <allowlist.txt> <alerts.yml> <dashboard.json>
//       fails when a used name is neither exported (per /metrics' # TYPE lines; a histogram
//       exports <name>_bucket, _sum and _count) nor in the allowlist, or when an allowlisted
//       name is exported already or used nowhere
import fs from 'node:fs';

const NAME = /\bvoice_broker_[a-z0-9_]+\b/g;

function dashboardQueries(file) {
  const dashboard = JSON.parse(fs.readFileSync(file, 'utf8'));
  const queries = [];
  const walk = panels => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) queries.push({ panel: panel.title, expr: target.expr });
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    const query = typeof variable.query === 'object' ? variable.query.query : null;
    if (query) queries.push({ panel: `variable ${variable.name}`, expr: query.replace(/^label_values\((.*),\s*\w+\)$/, '$1') });
  }
  return queries;
}

function alertExprs(file) {
  // Every rule's expression sits on one `expr:` line (kept so on purpose: greppable).
  return fs.readFileSync(file, 'utf8').split('\n').filter(line => /^\s*expr:/.test(line)).map(line => line.replace(/^\s*expr:\s*/, ''));
}

function used(alertsFile, dashboardFile) {
  const names = new Map();  // name -> where
  const note = (text, where) => {
    for (const name of text.match(NAME) ?? []) if (!names.has(name)) names.set(name, where);
  };
  for (const expr of alertExprs(alertsFile)) note(expr, 'alerts.yml');
  for (const { panel, expr } of dashboardQueries(dashboardFile)) note(expr, `dashboard "${panel}"`);
  return names;
}

function exported(metricsText) {
  const names = new Set();
  for (const line of metricsText.split('\n')) {
    const match = /^# TYPE (\S+) (\S+)/.exec(line);
    if (!match) continue;
    names.add(match[1]);
    if (match[2] === 'histogram' || match[2] === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) names.add(match[1] + suffix);
  }
  return names;
}

const [command, ...args] = process.argv.slice(2);
if (command === 'names') {
  for (const name of [...used(args[0], args[1]).keys()].sort()) console.log(name);
} else if (command === 'queries') {
  const rules = dashboardQueries(args[0]).map(({ expr }, i) => {
    const concrete = expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
    return `      - record: dashboard:query_${i + 1}\n        expr: ${JSON.stringify(concrete)}\n`;
  });
  fs.writeFileSync(args[1], `groups:\n  - name: dashboard-queries\n    rules:\n${rules.join('')}`);
  console.log(`${rules.length} dashboard queries`);
} else if (command === 'compare') {
  const [metricsFile, allowlistFile, alertsFile, dashboardFile] = args;
  const have = exported(fs.readFileSync(metricsFile, 'utf8'));
  const allowed = new Set(fs.readFileSync(allowlistFile, 'utf8').split('\n').map(line => line.replace(/#.*/, '').trim()).filter(Boolean));
  const names = used(alertsFile, dashboardFile);
  const problems = [];
  for (const [name, where] of names) {
    if (!have.has(name) && !allowed.has(name)) problems.push(`${name} (used in ${where}) is not exported by the server and not in the allowlist`);
  }
  for (const name of allowed) {
    if (have.has(name)) problems.push(`${name} is exported now: delete it from ${allowlistFile}`);
    else if (!names.has(name)) problems.push(`${name} is in the allowlist but used nowhere: delete it`);
  }
  const live = [...names.keys()].filter(name => have.has(name)).length;
  console.log(`${names.size} metric names used: ${live} exported by the server, ${names.size - live} not (yet)`);
  for (const problem of problems) console.log(`  ${problem}`);
  process.exit(problems.length ? 1 : 0);
} else {
  console.error('usage: observability-metrics.mjs names|queries|compare ...');
  process.exit(2);
}
