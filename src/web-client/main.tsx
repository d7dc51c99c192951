// The pages' entry: the server names the page in #app's data-page; this
// renders it. One bundle for all pages (they share the client and the UI).
import { render } from 'hono/jsx/dom';
import './app.css';
import { AccountPage } from './pages/account.js';
import { ForgotPage, LoginPage, RegisterPage, ResetPage, VerifyPage } from './pages/auth.js';
import { ConsolePage } from './pages/console.js';

const PAGES = {
  login: LoginPage,
  register: RegisterPage,
  'forgot-password': ForgotPage,
  'reset-password': ResetPage,
  'verify-email': VerifyPage,
  account: AccountPage,
  console: ConsolePage,
} as const;

const root = document.getElementById('app');
const Page = root ? PAGES[root.dataset.page as keyof typeof PAGES] : undefined;
if (root && Page) {
  root.textContent = '';
  render(<Page />, root);
}
