// The web inbox: plain DOM code, no framework, no build step. Message data is
// only ever put into the page as text (textContent), never as HTML; a
// message's own HTML is shown in a sandboxed iframe served with its own CSP.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  messages: [], // summaries, newest first
  selected: null, // id
  open: null, // detail of the open message
  query: '',
  tab: 'html',
  remote: false,
  newIds: new Set(),
};
const TABS = ['html', 'text', 'headers', 'mime', 'source'];

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function formatTime(iso) {
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

async function api(method, path) {
  const res = await fetch(path, { method });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

// ------------------------------------------------------------------ list

function flagsOf(m) {
  const flags = el('span', { class: 'flags' });
  flags.append(m.tls ? el('span', { class: 'flag tls', text: 'TLS', title: [m.tls.protocol, m.tls.cipher].filter(Boolean).join(' ') }) : el('span', { class: 'flag plain', text: 'PLAIN', title: 'no TLS' }));
  if (m.user) flags.append(el('span', { class: 'flag auth', text: 'AUTH', title: `authenticated as ${m.user}` }));
  if (m.hasAttachments) flags.append(el('span', { class: 'flag att', text: 'ATT', title: 'has attachments' }));
  return flags;
}

function renderList() {
  const list = $('list');
  list.replaceChildren();
  for (const m of state.messages) {
    const li = el(
      'li',
      { role: 'option', 'data-id': m.id, class: [m.id === state.selected ? 'selected' : '', state.newIds.has(m.id) ? 'new' : ''].join(' ').trim() },
      el('span', { class: 'li-from', text: m.from || m.mailFrom.address || '(no sender)' }),
      el('span', { class: 'li-time', text: formatTime(m.receivedAt), title: m.receivedAt }),
      el('span', { class: 'li-subject' }, document.createTextNode(m.subject || '(no subject)'), flagsOf(m)),
      el('span', { class: 'li-size', text: formatSize(m.size) }),
      el('span', { class: 'li-to', text: `To: ${(m.to.length ? m.to : m.rcptTo.map((r) => r.address)).join(', ')}` }),
      m.snippet ? el('span', { class: 'li-snippet', text: m.snippet }) : null,
    );
    li.setAttribute('aria-selected', String(m.id === state.selected));
    li.addEventListener('click', () => openMessage(m.id));
    list.append(li);
  }
  state.newIds.clear();
  $('empty').hidden = state.messages.length > 0 || Boolean(state.query);
  $('list-status').textContent = state.query ? `${state.messages.length} matching “${state.query}”` : `${state.messages.length} message${state.messages.length === 1 ? '' : 's'}`;
}

async function loadList() {
  const q = state.query ? `&q=${encodeURIComponent(state.query)}` : '';
  const r = await api('GET', `/api/v1/messages?limit=1000${q}`);
  state.messages = r.messages;
  renderList();
}

// --------------------------------------------------------------- message

function setTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll('#tabs button')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
  for (const t of TABS) $(`tab-${t}`).hidden = t !== tab;
}

function htmlUrl() {
  return `/api/v1/messages/${encodeURIComponent(state.open.id)}/html${state.remote ? '?remote=1' : ''}`;
}

function setRemote(on) {
  state.remote = on;
  $('remote-note').textContent = on ? 'Remote content is loaded.' : 'Remote content is blocked.';
  $('remote-toggle').textContent = on ? 'Block remote content' : 'Load remote content';
  if (state.open) $('html-frame').src = htmlUrl();
}

function renderMime(node) {
  const li = el('li', {});
  const label = [node.contentType, node.filename ? `“${node.filename}”` : null, node.encoding, formatSize(node.size)].filter(Boolean).join('  ·  ');
  li.append(el('span', { class: 'muted', text: `${node.path}  ` }), document.createTextNode(label));
  if (node.attachment !== undefined) {
    li.append(' ', el('a', { href: `/api/v1/messages/${encodeURIComponent(state.open.id)}/attachments/${node.attachment}`, text: 'download', download: node.filename || '' }));
  }
  if (node.children) li.append(el('ul', {}, ...node.children.map(renderMime)));
  return li;
}

function renderTranscript(text) {
  const pre = $('transcript');
  pre.replaceChildren();
  for (const line of text.split('\n')) {
    // The timing line is for replay tools; the download keeps it.
    if (!line || line.startsWith('# timing:')) continue;
    pre.append(el('span', { class: line.startsWith('S:') ? 's' : line.startsWith('C:') ? 'c' : 'muted', text: `${line}\n` }));
  }
}

async function openMessage(id, { focusList = false } = {}) {
  state.selected = id;
  for (const li of $('list').children) {
    const on = li.dataset.id === id;
    li.classList.toggle('selected', on);
    li.setAttribute('aria-selected', String(on));
    if (on) li.scrollIntoView({ block: 'nearest' });
  }
  let m;
  try {
    m = await api('GET', `/api/v1/messages/${encodeURIComponent(id)}`);
  } catch {
    return;
  }
  if (state.selected !== id) return;
  state.open = m;
  $('main').classList.add('viewing');
  $('main').classList.remove('empty-view');
  $('view-pane').hidden = false;
  $('v-subject').textContent = m.subject || '(no subject)';
  const meta = $('v-meta');
  meta.replaceChildren();
  const row = (k, v) => v && meta.append(el('dt', { text: k }), el('dd', { text: v }));
  row('From', m.from);
  row('To', m.to.join(', '));
  row('Cc', (m.cc || []).join(', '));
  row('Envelope', `MAIL FROM:<${m.mailFrom.address}> → ${m.rcptTo.map((r) => `<${r.address}>`).join(', ')}`);
  row('Received', `${new Date(m.receivedAt).toLocaleString()} from ${m.clientName || '?'} [${m.remoteAddress}] via ${m.transmissionType}`);
  row('Security', [m.tls ? `TLS ${m.tls.protocol || ''} ${m.tls.cipher || ''}`.trim() : 'no TLS', m.user ? `AUTH as ${m.user}` : 'no AUTH'].join(' · '));
  row('Size', formatSize(m.size));
  // HTML (or the text, escaped by the server) in the sandboxed frame.
  $('html-frame').src = htmlUrl();
  $('tab-text').textContent = m.text ?? '(no text part)';
  const table = $('headers-table');
  table.replaceChildren(...m.headers.map(([k, v]) => el('tr', {}, el('td', { text: k }), el('td', { text: v }))));
  $('attachments').replaceChildren(
    ...(m.attachments.length
      ? m.attachments.map((a) =>
          el(
            'li',
            {},
            el('a', { href: a.url, text: a.filename || `part ${a.index}`, download: a.filename || '' }),
            el('span', { class: 'muted', text: `  ${a.contentType} · ${formatSize(a.size)}${a.disposition === 'inline' ? ' · inline' : ''}` }),
          ),
        )
      : [el('li', { class: 'muted', text: 'none' })]),
  );
  $('mime-tree').replaceChildren(renderMime(m.mime));
  const source = await api('GET', `/api/v1/messages/${encodeURIComponent(id)}/source`);
  if (state.selected !== id) return;
  $('envelope').textContent = [
    `Client:     ${source.clientName || '?'} [${source.remoteAddress}]`,
    `Protocol:   ${source.transmissionType}${source.tls ? ` (${source.tls.protocol} ${source.tls.cipher})` : ''}`,
    `AUTH:       ${source.user || '-'}`,
    `MAIL FROM:  <${source.mailFrom.address}>${Object.entries(source.mailFrom.args).map(([k, v]) => ` ${k}${v === true ? '' : `=${v}`}`).join('')}`,
    ...source.rcptTo.map((r) => `RCPT TO:    <${r.address}>${Object.entries(r.args).map(([k, v]) => ` ${k}${v === true ? '' : `=${v}`}`).join('')}${source.accepted.includes(r.address) ? '' : '  (refused)'}`),
  ].join('\n');
  renderTranscript(source.transcript);
  $('transcript-link').href = `/api/v1/messages/${encodeURIComponent(id)}/transcript?download`;
  $('raw').textContent = source.raw;
  $('raw-link').href = `/api/v1/messages/${encodeURIComponent(id)}/raw?download`;
  if (focusList) $('list').focus();
}

function closeMessage() {
  $('main').classList.remove('viewing');
  state.open = null;
  $('list').focus();
}

function showEmptyView() {
  state.open = null;
  state.selected = null;
  $('view-pane').hidden = true;
  $('main').classList.remove('viewing');
  $('main').classList.add('empty-view');
}

async function deleteMessage(id) {
  const index = state.messages.findIndex((m) => m.id === id);
  await api('DELETE', `/api/v1/messages/${encodeURIComponent(id)}`);
  removeFromList(id);
  const next = state.messages[Math.min(index, state.messages.length - 1)];
  if (next) openMessage(next.id, { focusList: true });
  else showEmptyView();
}

function removeFromList(id) {
  state.messages = state.messages.filter((m) => m.id !== id);
  if (state.selected === id) showEmptyView();
  renderList();
}

// ---------------------------------------------------------- live updates

/** True when a new message belongs in the list as it is; null when a search is active (the server decides, so reload). */
function matchesQuery() {
  return state.query ? null : true;
}

function connectEvents() {
  const es = new EventSource('/api/v1/events');
  es.addEventListener('open', () => {
    $('live').textContent = 'live';
    $('live').className = 'live on';
  });
  es.addEventListener('error', () => {
    $('live').textContent = 'reconnecting…';
    $('live').className = 'live off';
  });
  es.addEventListener('message', (e) => {
    const m = JSON.parse(e.data);
    if (state.messages.some((x) => x.id === m.id)) return;
    const match = matchesQuery();
    if (match === null) return void loadList();
    state.newIds.add(m.id);
    state.messages.unshift(m);
    renderList();
  });
  es.addEventListener('delete', (e) => removeFromList(JSON.parse(e.data).id));
  es.addEventListener('clear', () => {
    state.messages = [];
    showEmptyView();
    renderList();
  });
}

// -------------------------------------------------------------- keyboard

function move(delta) {
  if (!state.messages.length) return;
  const i = state.messages.findIndex((m) => m.id === state.selected);
  const next = state.messages[Math.max(0, Math.min(state.messages.length - 1, i < 0 ? 0 : i + delta))];
  openMessage(next.id, { focusList: true });
}

document.addEventListener('keydown', (e) => {
  if (e.target === $('search')) {
    if (e.key === 'Escape') {
      $('search').blur();
      $('list').focus();
    }
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  switch (e.key) {
    case 'j':
    case 'ArrowDown':
      move(1);
      break;
    case 'k':
    case 'ArrowUp':
      move(-1);
      break;
    case 'Enter':
    case 'o':
      if (state.selected) openMessage(state.selected);
      else move(0);
      break;
    case 'Escape':
      closeMessage();
      break;
    case 'Delete':
    case '#':
      if (state.selected) deleteMessage(state.selected);
      break;
    case '/':
      $('search').focus();
      break;
    case 'r':
      if (state.open) setRemote(!state.remote);
      break;
    default:
      if (/^[1-5]$/.test(e.key) && state.open) setTab(TABS[Number(e.key) - 1]);
      else return;
  }
  e.preventDefault();
});

// ------------------------------------------------------------------ wire

let searchTimer;
$('search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.query = $('search').value.trim();
    loadList();
  }, 150);
});
$('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.query = $('search').value.trim();
  loadList();
});
$('delete-all').addEventListener('click', async () => {
  if (!state.messages.length || !confirm(`Delete all ${state.messages.length} messages?`)) return;
  await api('DELETE', '/api/v1/messages');
});
$('delete-one').addEventListener('click', () => state.open && deleteMessage(state.open.id));
$('back').addEventListener('click', closeMessage);
$('home').addEventListener('click', (e) => {
  e.preventDefault();
  closeMessage();
});
$('remote-toggle').addEventListener('click', () => setRemote(!state.remote));
for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => setTab(b.dataset.tab));

setTab('html');
api('GET', '/api/v1/info').then((info) => {
  $('smtp-addr').textContent = `${info.smtp.host}:${info.smtp.port}`;
});
connectEvents();
loadList();
