# Rekey's mail, in English. Every language ships the same messages with the same variables
# (a test checks it). An operator overrides any of them with a file of the same name in
# `messages_dir`: en.ftl, de.ftl, de-AT.ftl, …

## Times and spans

month = { $month ->
    [1] January
    [2] February
    [3] March
    [4] April
    [5] May
    [6] June
    [7] July
    [8] August
    [9] September
    [10] October
    [11] November
   *[12] December
}
# 14:05 UTC on 26 November 2026; $zone is UTC, or the account's zone as the tz database
# abbreviates it (CET, EST, +0530)
time = { $hour }:{ $minute } { $zone } on { $day } { $month } { $year }
span-minutes = { $n ->
    [one] { $n } minute
   *[other] { $n } minutes
}
span-hours = { $n ->
    [one] { $n } hour
   *[other] { $n } hours
}
span-hours-minutes = { $hours } { $minutes }

## Parts that every mail with a link and a code shares

link-browser = Or open it in a web browser:
link-code = If the link does not open, choose “Enter a code instead” in { $product } and type:
link-once = The link and the code work once, until { $until } ({ $span } after you asked).
support = Need help? { $contact }

## The reset mail

reset-subject = Reset your { $product } password
reset-lead = Someone asked to reset the password of the { $product } account for { $address }.
reset-open = To choose a new password, open this link on the computer where { $product } is installed:
reset-app-button = Open { $product } to reset your password
reset-browser-button = Reset in the browser
reset-ignore = If you did not ask for this, ignore this mail: your password stays as it is and nobody else can use this link.

## The mail that finishes a new account

verify-subject = Finish creating your { $product } account
verify-lead = Someone asked to create a { $product } account for { $address }.
verify-open = To finish, open this link on the computer where { $product } is installed:
verify-app-button = Open { $product } to finish
verify-browser-button = Finish in the browser
verify-until-then = Until then the account cannot sign in.
verify-ignore = If you did not ask for this, ignore this mail: no account is made for this address.

## When someone tries to register an address that has an account

exists-subject = You already have a { $product } account
exists-lead = Someone tried to create a { $product } account for { $address } at { $time }, but this address already has one.
exists-if-you = If it was you: sign in with your password, or choose “Forgot password” in { $product } to reset it.
exists-if-not = If it was not you, you can ignore this mail: nothing was changed.

## After a password change

changed-subject = Your { $product } password was changed
changed-lead = The password of the { $product } account for { $address } was changed at { $time } ({ $how }).
changed-how-in-app = changed in { $product }
changed-how-link = reset with the mailed link
changed-how-code = reset with the mailed code
changed-signed-out = You were signed out everywhere; sign in again with the new password.
changed-not-you = Wasn't you?
changed-act = Someone may have access to your mail. Reset your password right away (“Forgot password” in { $product }) and secure your mail account.

## rekeyd mail test

test-subject = { $product } test message
test-body = This is a test message from { $product }, sent at { $time }. Mail delivery works.

## rekeyd's landing pages (behind the mailed https links)

page-checking = Checking your link…
page-email = Email
page-code = Code from the mail
page-open-app = Open in { $product }
page-unreachable = The server could not be reached properly; try again.
page-reset-title = Reset your password
page-reset-or-here = or choose the new password here:
page-reset-for = Choose a new password for { $address }. This link works until { $until }.
page-reset-ask-again = You can ask for a new link in the app.
page-reset-code-form = Enter your email, the code from the mail, and a new password.
page-new-password = New password
page-new-password-again = New password again
page-show-passwords = Show passwords
page-strength = Password strength
page-strength-0 = Very weak
page-strength-1 = Weak
page-strength-2 = Fair
page-strength-3 = Strong
page-strength-4 = Very strong
page-reset-submit = Set new password
page-not-same = The two passwords are not the same.
page-reset-done = Your password was changed. Sign in with the new password.
page-verify-title = Finish creating your account
page-verify-or-here = or finish here:
page-verify-for = Finish the account for { $address }. This link works until { $until }.
page-verify-code-form = Enter your email and the code from the mail.
page-verify-password = The password you chose for it
page-verify-why = Asked again so that only the person who chose it can finish the account.
page-verify-submit = Finish creating the account
page-verify-done = Your account { $address } is ready. Sign in with the password you chose.
# What the pages say for the server's refusals (by its stable code); any other refusal is
# shown in the server's own words.
page-error-token_used = This link was already used; ask for a new one if you need to reset again.
page-error-token_replaced = This link was replaced by a newer one; use the link in the most recent mail.
page-error-token_stale = The password was changed after this link was sent, so the link no longer works.
page-error-token_expired = This link has expired; ask for a new one.
page-error-code_invalid = That code does not work: it is wrong, or no longer valid. Check the most recent mail, or open the link in it.
page-error-code_burned = That code was entered wrong too many times and no longer works; ask for a new reset.
page-error-password_mismatch = That is not the password chosen when this account was asked for.
page-error-account_verified = This link was already used and the account is ready: sign in with the password you chose.
page-error-rate_limited = Too many attempts; wait a few minutes and try again.
page-error-busy = The server is busy with other requests; try again in a moment.
