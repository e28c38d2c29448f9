# Rekey's refusals, in English: the `message` beside each stable `code`, in the API's answers
# (in the language the request's Accept-Language asks for) and in the app's window.

error-email-missing = Enter an email address.
error-email-malformed = That does not look like an email address (it should look like name@example.com).
error-email-too-long = That email address is too long.
error-email-invisible = That email address has invisible characters in it (they can come from copying); type it again.
error-locale-invalid = “{ $locale }” is not a language like en, de, fr, es or de-AT.
error-time-zone-invalid = “{ $zone }” is not a time zone like Europe/Berlin or America/New_York.
error-rate-limited = Too many attempts; try again in { $span }.
error-busy = { $product } is busy with other requests; try again in { $span }.
error-password-too-short = Use at least { $min } characters (this one has { $length }).
error-password-too-long = That password is too long: keep it under { $max } bytes.
error-password-common = That password is on a list of common or leaked passwords; pick something less predictable.
error-password-context = Don't build the password from your email address or the app's name.
error-password-pattern = That password is a simple pattern ({ $pattern ->
        [repeated] the same characters repeated
        [piece] a short piece repeated
       *[run] a run of consecutive characters
    }); it would be guessed quickly.
error-token-malformed = This link is damaged or incomplete; copy the whole link from the mail, or use the code instead.
error-token-bad-signature = This link was not issued by this { $product } or has been altered.
error-token-unsigned = This link is not signed, so it cannot be trusted.
error-token-wrong-algorithm = This link is signed in a way { $product } does not accept.
error-token-unknown-key = This link was signed with a key this { $product } does not know; ask for a new link.
error-token-wrong-issuer = This link was issued by another service, not this { $product }.
error-token-wrong-audience = This link is not meant for this page (a reset link and an account link are not the same).
error-token-expired = This link has expired; ask for a new one.
error-token-not-yet-valid = This link is not valid yet; check your computer's clock.
error-token-replaced = This link was replaced by a newer one; use the link in the most recent mail.
error-token-used = This link was already used; ask for a new one if you need to reset again.
error-token-stale = The password was changed after this link was sent, so the link no longer works.
error-code-invalid = That code does not work: it is wrong, or no longer valid (5 wrong tries retire a code). Check the most recent mail, or open the link in it, which wrong codes do not affect.
error-code-burned = That code was entered wrong too many times and no longer works; ask for a new reset.
error-bad-credentials = That email and password do not match an account.
error-password-mismatch = That is not the password chosen when this account was asked for. If you did not ask for an account, ignore the mail; to make one, ask again with the password you want.
error-account-verified = This link was already used and the account is ready: sign in with the password you chose.
error-email-taken = An account with that email already exists; sign in, or reset its password.
error-session-invalid = You have been signed out; sign in again.
error-store-unavailable = { $product } cannot reach its database right now and nothing was changed; try again in a minute.
error-internal = Something went wrong on { $product }'s side and nothing was changed; try again, and if it keeps happening see the log.
error-registration-closed = This server does not let new accounts be created; ask its administrator.
