// The pages' entry: the server names the page in #app's data-page; this
// renders it. One bundle for all pages (they share the client and the UI).
import { render } from 'hono/jsx/dom';
import './app.css';
import { AccountPage } from './pages/account.js';
import { ForgotPage, LoginPage, RegisterPage, ResetPage, VerifyPage } from './pages/auth.js';
import { ConsolePage } from './pages/console.js';
// The registry of hosted pages (path and title); the server reads the same file to serve their shells.
import type PAGES from './pages.json';

/** A view for every page of the registry, and none for a page it lacks: either mistake fails to compile. */
const VIEWS = {
  '/login': LoginPage,
  '/register': RegisterPage,
  '/forgot-password': ForgotPage,
  '/reset-password': ResetPage,
  '/verify-email': VerifyPage,
  '/account': AccountPage,
  '/console': ConsolePage,
} satisfies Record<keyof typeof PAGES, () => unknown>;

const root = document.getElementById('app');
const Page = root ? VIEWS[`/${root.dataset.page}` as keyof typeof VIEWS] : undefined;
if (root && Page) {
  root.textContent = '';
  render(<Page />, root);
}
