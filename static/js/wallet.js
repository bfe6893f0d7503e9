/*
 * BCFL browser wallet helper (vanilla JS, no dependencies, no CDN).
 *
 *   BCFLWallet.available()                     -> boolean (is window.ethereum present?)
 *   BCFLWallet.connect()                       -> Promise<string> first account (eth_requestAccounts)
 *   BCFLWallet.ensureChain(chainId?)           -> Promise<number> switches/adds the chain; default
 *                                                 document.body.dataset.chainId
 *   BCFLWallet.signIn({next?, status?})        -> Promise<{address, redirect}>; navigates to redirect
 *   BCFLWallet.sendTransaction({to, data, value, from?, gas?, status?})
 *                                              -> Promise<string> tx hash (eth_sendTransaction)
 *   BCFLWallet.waitForReceipt(hash, {intervalMs=1000, timeoutMs=120000, status?})
 *                                              -> Promise<receipt>; rejects on timeout or status 0x0
 *   BCFLWallet.setStatus(status, text, kind?)  -> shows progress/errors; kind: "info" | "ok" | "error"
 *   BCFLWallet.csrfToken()                     -> string (csrftoken cookie, else the form field)
 *
 * `status` is an element or a selector; default "#wallet-status". `value` may be a hex string
 * ("0x..."), a bigint or a decimal string/number of wei. Errors thrown are Error objects whose
 * `message` is fit to show to the user (wallet error code in `err.code` when there is one).
 */
(function () {
  "use strict";

  var LOCAL_CHAIN_ID = 31337;
  var LOCAL_RPC_URL = "http://127.0.0.1:8545";

  function provider() {
    if (!window.ethereum || typeof window.ethereum.request !== "function") {
      throw new Error(
        "No Ethereum wallet found in this browser. Install MetaMask or use the participant CLI."
      );
    }
    return window.ethereum;
  }

  function available() {
    return !!(window.ethereum && typeof window.ethereum.request === "function");
  }

  function resolveStatus(status) {
    if (status && typeof status === "object") return status;
    return document.querySelector(status || "#wallet-status");
  }

  function setStatus(status, text, kind) {
    var el = resolveStatus(status);
    if (!el) return;
    el.textContent = text || "";
    el.classList.remove("info", "ok", "error");
    if (kind) el.classList.add(kind);
  }

  function walletError(err) {
    // EIP-1193 errors: 4001 user rejected, 4100 unauthorized, 4902 unknown chain, -32002 pending.
    var code = err && err.code;
    var text;
    if (code === 4001) text = "You rejected the request in your wallet.";
    else if (code === -32002) text = "Your wallet already has a pending request: open it to continue.";
    else if (code === 4100) text = "Unlock your wallet and allow this site to use your account.";
    else text = (err && err.message) || String(err);
    var out = new Error(text);
    out.code = code;
    out.cause = err;
    return out;
  }

  async function request(method, params) {
    try {
      return await provider().request({ method: method, params: params || [] });
    } catch (err) {
      throw walletError(err);
    }
  }

  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function postJSON(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(body || {}),
    });
    var data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      var msg = (data && (data.error || data.detail)) || "Server error " + response.status + ".";
      if (response.status === 403 && !(data && data.error)) {
        msg = "The request was refused (CSRF or permissions). Reload the page and try again.";
      }
      var err = new Error(msg);
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  function toHex(n) {
    return "0x" + BigInt(n).toString(16);
  }

  function utf8ToHex(text) {
    var bytes = new TextEncoder().encode(text);
    var hex = "0x";
    for (var i = 0; i < bytes.length; i++) hex += bytes[i].toString(16).padStart(2, "0");
    return hex;
  }

  function expectedChainId() {
    var raw = document.body && document.body.dataset.chainId;
    var id = parseInt(raw, 10);
    return isNaN(id) ? null : id;
  }

  async function connect() {
    var accounts = await request("eth_requestAccounts");
    if (!accounts || !accounts.length) throw new Error("Your wallet did not share an account.");
    return accounts[0];
  }

  async function ensureChain(chainIdInt) {
    var wanted = chainIdInt == null ? expectedChainId() : Number(chainIdInt);
    if (wanted == null) throw new Error("This page does not say which chain to use.");
    var current = parseInt(await request("eth_chainId"), 16);
    if (current === wanted) return wanted;
    var hexId = toHex(wanted);
    try {
      await request("wallet_switchEthereumChain", [{ chainId: hexId }]);
    } catch (err) {
      if (err.code !== 4902) throw err;
      var rpcUrl = (document.body && document.body.dataset.rpcUrl) || (wanted === LOCAL_CHAIN_ID ? LOCAL_RPC_URL : "");
      if (!rpcUrl) throw new Error("Add chain id " + wanted + " to your wallet, then try again.");
      await request("wallet_addEthereumChain", [
        {
          chainId: hexId,
          chainName: wanted === LOCAL_CHAIN_ID ? "BCFL local (anvil)" : "BCFL chain " + wanted,
          nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
          rpcUrls: [rpcUrl],
        },
      ]);
    }
    current = parseInt(await request("eth_chainId"), 16);
    if (current !== wanted) throw new Error("Switch your wallet to chain id " + wanted + " and try again.");
    return wanted;
  }

  function buildMessage(c, address) {
    // EIP-4361 layout, byte for byte what the server re-serialises (siwe prepare_message).
    return (
      c.domain + " wants you to sign in with your Ethereum account:\n" +
      address + "\n\n" +
      c.statement + "\n\n" +
      "URI: " + c.uri + "\n" +
      "Version: 1\n" +
      "Chain ID: " + c.chain_id + "\n" +
      "Nonce: " + c.nonce + "\n" +
      "Issued At: " + c.issued_at + "\n" +
      "Expiration Time: " + c.expiration_time
    );
  }

  function nextFromPage() {
    var q = new URLSearchParams(window.location.search).get("next");
    return q || "";
  }

  async function signIn(options) {
    options = options || {};
    var status = options.status;
    var next = options.next || nextFromPage();
    try {
      setStatus(status, "Connecting to your wallet…", "info");
      var account = await connect();
      setStatus(status, "Checking the network…", "info");
      await ensureChain();
      setStatus(status, "Requesting a sign-in challenge…", "info");
      var challenge = await postJSON("/accounts/siwe/nonce", { address: account });
      var message = buildMessage(challenge, challenge.address);
      setStatus(status, "Confirm the sign-in message in your wallet…", "info");
      var signature = await request("personal_sign", [utf8ToHex(message), account]);
      setStatus(status, "Verifying…", "info");
      var result = await postJSON("/accounts/siwe/verify", {
        message: message,
        signature: signature,
        address: challenge.address,
        next: next,
      });
      setStatus(status, "Signed in as " + result.address + ". Redirecting…", "ok");
      if (options.redirect !== false) window.location.assign(result.redirect);
      return result;
    } catch (err) {
      setStatus(status, err.message, "error");
      throw err;
    }
  }

  async function sendTransaction(tx) {
    tx = tx || {};
    var status = tx.status;
    try {
      if (!tx.to) throw new Error("The transaction has no recipient.");
      var from = tx.from || (await connect());
      await ensureChain();
      var params = { from: from, to: tx.to };
      if (tx.data) params.data = tx.data;
      if (tx.value != null && tx.value !== "" && tx.value !== 0) {
        params.value = typeof tx.value === "string" && tx.value.indexOf("0x") === 0 ? tx.value : toHex(tx.value);
      }
      if (tx.gas != null) params.gas = typeof tx.gas === "string" && tx.gas.indexOf("0x") === 0 ? tx.gas : toHex(tx.gas);
      setStatus(status, "Confirm the transaction in your wallet…", "info");
      var hash = await request("eth_sendTransaction", [params]);
      setStatus(status, "Transaction sent: " + hash, "info");
      return hash;
    } catch (err) {
      setStatus(status, err.message, "error");
      throw err;
    }
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  async function waitForReceipt(hash, options) {
    options = options || {};
    var interval = options.intervalMs || 1000;
    var deadline = Date.now() + (options.timeoutMs || 120000);
    var status = options.status;
    setStatus(status, "Waiting for the transaction to be mined…", "info");
    while (Date.now() < deadline) {
      var receipt = await request("eth_getTransactionReceipt", [hash]);
      if (receipt) {
        if (receipt.status === "0x0") {
          var err = new Error("The transaction was reverted (" + hash + ").");
          err.receipt = receipt;
          setStatus(status, err.message, "error");
          throw err;
        }
        setStatus(status, "Transaction confirmed in block " + parseInt(receipt.blockNumber, 16) + ".", "ok");
        return receipt;
      }
      await sleep(interval);
    }
    var timeout = new Error("No receipt for " + hash + " yet; check your wallet's activity list.");
    setStatus(status, timeout.message, "error");
    throw timeout;
  }

  function wirePage() {
    var buttons = document.querySelectorAll("[data-wallet-signin]");
    var missing = document.querySelectorAll("[data-wallet-missing]");
    var has = available();
    buttons.forEach(function (btn) {
      btn.hidden = !has;
      if (btn.dataset.walletWired) return;
      btn.dataset.walletWired = "1";
      btn.addEventListener("click", function () {
        btn.disabled = true;
        signIn({ next: btn.dataset.next || "", status: btn.dataset.status })
          .catch(function () {})
          .finally(function () {
            btn.disabled = false;
          });
      });
    });
    missing.forEach(function (el) {
      el.hidden = has;
    });
  }

  window.BCFLWallet = {
    available: available,
    connect: connect,
    ensureChain: ensureChain,
    signIn: signIn,
    sendTransaction: sendTransaction,
    waitForReceipt: waitForReceipt,
    setStatus: setStatus,
    csrfToken: csrfToken,
    buildMessage: buildMessage,
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wirePage);
  else wirePage();
  // MetaMask may inject after load on some browsers; it then fires this event.
  window.addEventListener("ethereum#initialized", wirePage, { once: true });
})();
