// The order form's live total: the same formula as billing/pricing.py, in whole cents.
(function () {
  "use strict";
  var form = document.getElementById("order-form");
  var data = JSON.parse(document.getElementById("price-data").textContent);
  var perPeriod = document.getElementById("price-per-period");
  var due = document.getElementById("price-due");

  // Grouped and separated as the page's language does it, like billing/money.py on the server.
  var number = new Intl.NumberFormat(document.documentElement.lang || "en", {minimumFractionDigits: 2, maximumFractionDigits: 2});

  function amount(cents) {
    var sign = cents < 0 ? "-" : "";
    cents = Math.abs(cents);
    // A decimal string rather than cents / 100: Intl formats it exactly, with no float rounding.
    return number.format(sign + Math.floor(cents / 100) + "." + String(cents % 100).padStart(2, "0"));
  }

  function update() {
    var period = parseInt(form.elements.period.value, 10);
    var cents = data.prices[String(period)] || 0;
    Object.keys(data.resources).forEach(function (kind) {
      var input = form.elements[kind];
      if (!input) { return; }
      var resource = data.resources[kind];
      var quantity = parseInt(input.value, 10);
      if (isNaN(quantity)) { quantity = resource.included; }
      cents += Math.max(0, quantity - resource.included) * resource.unitPrice * period;
    });
    perPeriod.textContent = amount(cents);
    due.textContent = amount(cents + data.setupFee);
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
