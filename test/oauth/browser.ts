// A person at a browser, reduced to what the OAuth flows need: follow
// redirects, keep cookies, read the first POST form on a page, fill in the
// visible fields and submit it with its hidden ones. It drives the real
// oidc-provider pages (device code entry, sign-in, consent) as a user would.

export class Browser {
  readonly #cookies = new Map<string, string>();
  /** URLs visited, in order (redirect targets included). */
  readonly visited: string[] = [];

  async #fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#cookies.size) headers.set('cookie', [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return res;
  }

  /** GET (or POST) and follow redirects; resolves with the final page. */
  async open(url: string, init: RequestInit = {}): Promise<{ url: string; status: number; html: string }> {
    let current = url;
    let res = await this.#fetch(current, init);
    this.visited.push(current);
    for (let hops = 0; res.status >= 300 && res.status < 400 && res.headers.get('location'); hops++) {
      if (hops > 10) throw new Error('too many redirects');
      current = new URL(res.headers.get('location')!, current).href;
      this.visited.push(current);
      res = await this.#fetch(current);
    }
    return { url: current, status: res.status, html: await res.text() };
  }

  /** Submits the first POST form of `page`, with `fields` over its hidden inputs. */
  async submit(page: { url: string; html: string }, fields: Record<string, string> = {}): Promise<{ url: string; status: number; html: string }> {
    const form = /<form\b[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(page.html) ?? /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(page.html);
    if (!form) throw new Error(`no form on ${page.url}:\n${page.html.slice(0, 500)}`);
    const action = /action="([^"]*)"/.exec(form[0])?.[1] ?? page.url;
    const body = new URLSearchParams();
    for (const input of form[1]!.matchAll(/<input\b[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name && /type="hidden"/.test(input[0])) body.set(name, value);
    }
    for (const [name, value] of Object.entries(fields)) body.set(name, value);
    return this.open(new URL(action.replace(/&amp;/g, '&'), page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    });
  }

  /**
   * Signs in at a provider page and consents, as a person would, starting
   * from `url` (a verification_uri_complete or an authorization URL).
   * Returns the last page (or the redirect target the flow ended at).
   */
  async signInAndConsent(url: string, login: string, userCode?: string): Promise<{ url: string; status: number; html: string }> {
    let page = await this.open(url);
    for (let step = 0; step < 6; step++) {
      if (/name="user_code"/.test(page.html) && userCode) page = await this.submit(page, { user_code: userCode }); // device: type the code
      else if (/name="confirm"/.test(page.html)) page = await this.submit(page); // device: confirm the code
      else if (/name="login"/.test(page.html)) page = await this.submit(page, { login, password: 'any' });
      else if (/value="consent"/.test(page.html)) page = await this.submit(page);
      else return page;
    }
    return page;
  }
}
