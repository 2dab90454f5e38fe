// Change plan or resources: the live preview. As the client changes the form, the preview endpoint
// (the same service_change_quote as the page) answers the exact charge or credit, shown in #change-live.
// Every word comes from the server: the endpoint's JSON or the page's data- attributes.
// Without JavaScript the "Show what it costs" button asks the page itself.
(function () {
  "use strict";
  var form = document.getElementById("change-form");
  var preview = document.getElementById("change-preview");
  var errors = document.getElementById("change-live-errors");
  var confirm = document.getElementById("change-confirm");
  var yes = document.getElementById("change-yes");
  var DELAY_MS = 300;
  var timer = null;
  var latest = 0;
  var previewed = null;  // the values the shown amount was computed for

  // Grouped and separated as the page's language does it, like billing/money.py on the server.
  var number = new Intl.NumberFormat(document.documentElement.lang || "en", {minimumFractionDigits: 2, maximumFractionDigits: 2});

  function money(amount, currency) {
    // The endpoint's decimal string, given to Intl as a string: no float rounding.
    return number.format(amount) + "\u00a0" + currency;
  }

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  function values() {
    return new URLSearchParams(new FormData(form));
  }

  // The "yes" posts the values this preview was computed for, as the server-rendered form does.
  function confirmWith(params) {
    Array.prototype.slice.call(confirm.querySelectorAll("input[type=hidden]:not([name=csrfmiddlewaretoken])")).forEach(function (input) {
      input.remove();
    });
    params.forEach(function (value, name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      confirm.insertBefore(input, yes);
    });
  }

  function show(quote, params) {
    var charged = Number(quote.charge) > 0;
    var credited = Number(quote.credit) > 0;
    text("change-text", quote.text);
    var price = document.getElementById("change-price");
    var newPrice = document.createElement("strong");
    newPrice.textContent = money(quote.new_price, quote.currency);
    price.textContent = money(quote.old_price, quote.currency) + " → ";
    price.appendChild(newPrice);
    text("change-days", quote.days_left + " / " + quote.days_in_period);
    text("change-amount-label", credited ? preview.dataset.creditLabel : preview.dataset.chargeLabel);
    text("change-amount", money(credited ? quote.credit : quote.charge, quote.currency));
    yes.textContent = charged ? preview.dataset.confirmAmount.replace("{amount}", money(quote.charge, quote.currency)) : preview.dataset.confirm;
    confirmWith(params);
    previewed = params.toString();
    yes.disabled = false;
    errors.hidden = true;
    preview.hidden = false;
  }

  function label(field) {
    var input = form.elements[field];
    var labelled = input && input.labels && input.labels[0];
    return labelled ? labelled.firstChild.textContent.trim() + ": " : "";  // the name, without the required mark
  }

  function markInvalid(input, invalid) {
    var field = input.closest(".field");
    if (invalid) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    if (field) { field.classList.toggle("has-error", invalid); }
  }

  function showErrors(byField) {
    errors.replaceChildren();
    Object.keys(byField).forEach(function (field) {
      if (form.elements[field]) { markInvalid(form.elements[field], true); }
      byField[field].forEach(function (message) {
        var line = document.createElement("p");
        line.textContent = label(field) + message;
        errors.appendChild(line);
      });
    });
    preview.hidden = true;
    errors.hidden = false;
    previewed = null;
  }

  function ask() {
    var params = values();
    var asked = ++latest;
    fetch(form.dataset.previewUrl + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        if (asked !== latest) { return; }  // an older answer arriving late
        // The server's errors from an earlier "Show what it costs" are about other values now.
        Array.prototype.slice.call(form.querySelectorAll(".error")).forEach(function (old) { old.remove(); });
        Array.prototype.forEach.call(form.elements, function (input) { markInvalid(input, false); });
        if (answer.ok) { show(answer.body, params); } else { showErrors(answer.body.errors || {}); }
      })
      .catch(function () {
        // No answer (offline, a server error): no amount rather than a stale one; the button still asks the page.
        if (asked === latest) { preview.hidden = true; previewed = null; }
      });
  }

  function changed() {
    // A field left after typing fires "change" for values already previewed (the click on "yes" does it): nothing to ask.
    if (values().toString() === previewed) { return; }
    // Until the answer for the new values arrives, the "yes" would book values the client no longer sees.
    yes.disabled = true;
    clearTimeout(timer);
    timer = setTimeout(ask, DELAY_MS);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
})();
