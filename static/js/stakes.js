/*
 * "My stakes": the holder's wallet sends the server-built StakeToken call (claimShares or claim, calldata
 * from the contract's ABI), waits for the receipt, then reloads the page (the chain is the record: the page
 * reads sharesClaimed / claimable / accumulated again, and the indexer adds the payout to the history).
 * Needs wallet.js (window.BCFLWallet). No dependencies.
 */
(function () {
  "use strict";

  var STATUS = "#wallet-status";

  async function onChain(W, wanted) {
    // ask the wallet to switch; if it cannot or will not, refuse here rather than send to the wrong chain
    try {
      await W.ensureChain(wanted);
    } catch (err) {
      if (err.code === 4001) throw err;
    }
    var current = parseInt(await window.ethereum.request({ method: "eth_chainId" }), 16);
    if (current !== wanted) {
      throw new Error("Your wallet is on chain " + current + "; this platform's stakes are on chain " + wanted + ". Switch networks in your wallet and try again.");
    }
  }

  async function send(flow, button) {
    var W = window.BCFLWallet;
    var buttons = document.querySelectorAll("[data-stake-send]");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      var account = await W.connect();
      if (account.toLowerCase() !== flow.dataset.wallet.toLowerCase()) {
        throw new Error("Your wallet's active account is " + account + "; switch to " + flow.dataset.wallet + ", the account you signed in with.");
      }
      await onChain(W, parseInt(button.dataset.chainId, 10));
      var hash = await W.sendTransaction({ to: button.dataset.to, data: button.dataset.data, from: account, status: STATUS });
      await W.waitForReceipt(hash, { status: STATUS });
      W.setStatus(STATUS, "Confirmed. Reloading…", "ok");
      window.location.reload();
    } catch (err) {
      if (err.receipt) {
        // Reverted on chain: the only ways are shares claimed meanwhile (the platform's claim job claims every
        // holder's shares; anyone may send a holder's claim) or revenue already paid out by the payout job.
        W.setStatus(STATUS, err.message + " Nothing was claimed and only gas was spent: your shares were " +
          "claimed, or this revenue paid out to you, by another transaction in the meantime (the platform's " +
          "claim and payout jobs do this for every holder). The page reloads with the current balances.", "error");
        setTimeout(function () { window.location.reload(); }, 6000);
        return;
      }
      W.setStatus(STATUS, err.message, "error");
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  function wire() {
    var flow = document.getElementById("stake-flow");
    if (!flow) return;
    var buttons = document.querySelectorAll("[data-stake-send]");
    if (!window.BCFLWallet || !window.BCFLWallet.available()) {
      buttons.forEach(function (b) { b.disabled = true; });
      if (buttons.length) {
        document.getElementById("wallet-status").textContent = "No browser wallet found; install one (e.g. MetaMask) to claim.";
      }
      return;
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () { send(flow, b); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
